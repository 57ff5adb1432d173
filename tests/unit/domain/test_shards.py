"""Series shards: stable, one shard per series, nested across power-of-two counts."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import schema, shards


def frame(n_items: int = 300, n_stores: int = 3, days: int = 4) -> pd.DataFrame:
    rows = [(f"I{i}", f"S{s}", d) for i in range(n_items) for s in range(n_stores) for d in range(days)]
    return pd.DataFrame(rows, columns=[schema.ITEM, schema.STORE, "day"])


def test_shard_is_blake2b_of_the_series_key():
    got = shards.shard_of(pd.Series(["A-1", "B"]), pd.Series(["S", "_"]), 8)
    expected = [int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 8 for key in (b"A-1\x1fS", b"B\x1f_")]
    assert list(got) == expected


def test_similar_ids_spread_over_the_shards():
    """Export-style ids that differ in one character (which CRC-32 crowded into few shards)."""
    items = pd.Series([f"SKU-{i:04d}" for i in range(6)] * 2)
    stores = pd.Series(["S01"] * 6 + ["S02"] * 6)
    got = shards.shard_of(items, stores, 4)
    assert len(set(got)) >= 3
    many = shards.shard_of(pd.Series([f"ITEM-{i:03d}" for i in range(400)]), pd.Series(["STORE-00"] * 400), 8)
    assert np.bincount(many, minlength=8).min() >= 30  # 50 expected per shard


def test_every_series_lives_in_exactly_one_shard_and_all_shards_are_used():
    data = frame()
    data["shard"] = shards.shard_of(data[schema.ITEM], data[schema.STORE], 4)
    per_series = data.groupby([schema.ITEM, schema.STORE])["shard"].nunique()
    assert (per_series == 1).all()
    assert sorted(data["shard"].unique()) == [0, 1, 2, 3]


def test_separator_keeps_keys_apart():
    left = shards.series_hash("a|b", "c")
    assert left != shards.series_hash("a", "b|c")
    assert shards.series_hash("ab", "c") != shards.series_hash("a", "bc")


@pytest.mark.parametrize("count", [2, 4, 16])
def test_a_finer_split_nests_inside_a_coarser_one(count):
    data = frame(100, 2, 1)
    fine = shards.shard_of(data[schema.ITEM], data[schema.STORE], count)
    coarse = shards.shard_of(data[schema.ITEM], data[schema.STORE], count // 2)
    assert np.array_equal(fine % (count // 2), coarse)


@pytest.mark.parametrize("bad", [0, 3, -2, 6, 2.0, True, schema.MAX_SHARDS * 2])
def test_counts_must_be_powers_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        shards.check_count(bad)


def test_shard_count_for_rows():
    assert shards.shard_count_for(0) == 1
    assert shards.shard_count_for(schema.SHARD_TARGET_ROWS) == 1
    assert shards.shard_count_for(schema.SHARD_TARGET_ROWS + 1) == 2
    assert shards.shard_count_for(30 * schema.SHARD_TARGET_ROWS) == 32


def test_reads_part_across_counts():
    assert shards.reads_part(5, 8, 1, 4)  # 5 % 4 == 1: the coarser part holds shard 5
    assert not shards.reads_part(5, 8, 2, 4)
    assert shards.reads_part(1, 4, 5, 8)  # 5 % 4 == 1: a finer part belongs to shard 1 of 4
    assert not shards.reads_part(1, 4, 6, 8)
    assert shards.needs_filter(8, 4) and not shards.needs_filter(8, 8) and not shards.needs_filter(4, 8)


def test_empty_input():
    assert shards.shard_of(pd.Series([], dtype=str), pd.Series([], dtype=str), 2).shape == (0,)
