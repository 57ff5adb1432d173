"""Shard parts without AWS: their keys, which parts a shard reads, row counts, and the local part files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from item_prediction.aws import columnar
from item_prediction.aws.settings import Settings
from item_prediction.domain import schema, shards
from item_prediction.steps import shard_store
from item_prediction.steps.shard_store import Part

SETTINGS = Settings(bucket="b", table="t")


def sales(items: int = 40, stores: int = 3, days: int = 5, quantity: float = 1.0) -> pd.DataFrame:
    rows = [
        (f"2024-01-{day + 1:02d}", f"I{item}", quantity, f"S{store}", np.nan if item % 2 else 2.5, item % 2)
        for item in range(items)
        for store in range(stores)
        for day in range(days)
    ]
    frame = pd.DataFrame(rows, columns=list(schema.CANONICAL_COLUMNS))
    return frame.astype({schema.PROMOTION: "int8"})


def read_all(path: str) -> list[pd.DataFrame]:
    with open(path, "rb") as handle:
        return [shard_store.canonical(group) for group in columnar.iter_row_groups(handle, columns=list(shard_store.DTYPES))]


def test_part_keys_parse_back_and_other_files_are_not_parts():
    key = shard_store.part_key(SETTINGS, "sales", "2024/jan.csv", 8, 5)
    assert key == "validated/sales/n=8/shard=00005/2024/jan.csv.parquet"
    assert shard_store.parse_part_key(SETTINGS, "sales", key) == ("2024/jan.csv", 8, 5)
    # an upload folder that looks like a partition stays part of the relative key
    nested = shard_store.part_key(SETTINGS, "sales", "n=2/shard=00001/x.csv", 1, 0)
    assert shard_store.parse_part_key(SETTINGS, "sales", nested) == ("n=2/shard=00001/x.csv", 1, 0)
    for other in (
        "validated/sales/_dataset.json",
        "validated/sales/_parts/2024/jan.csv.json",
        "validated/sales/jan.csv.csv.gz",  # the old layout
        "validated/sales/n=3/shard=00001/jan.csv.parquet",  # not a power of two
        "validated/sales/n=4/shard=00004/jan.csv.parquet",  # shard out of range
        "validated/sales/n=4/shard=00001/",
        "validated/other/n=1/shard=00000/jan.csv.parquet",
    ):
        assert shard_store.parse_part_key(SETTINGS, "sales", other) is None, other


def test_a_shard_reads_coarser_parts_it_lies_in_and_finer_parts_inside_it():
    parts = [Part(f"k{n}-{t}", "a.csv", n, t) for n in (1, 2, 4, 8) for t in range(n)]
    chosen = {(part.part_count, part.part_shard) for part in shard_store.parts_for_shard(parts, 4, 3)}
    assert chosen == {(1, 0), (2, 1), (4, 3), (8, 3), (8, 7)}
    everything = shard_store.parts_for_shard(parts, 1, 0)
    assert everything == parts


def test_the_sink_routes_every_row_to_its_shard_in_bounded_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(shard_store, "ROW_GROUP_ROWS", 50)
    monkeypatch.setattr(shard_store, "BUFFER_ROWS", 120)
    frame = sales()
    sink = shard_store.ShardSink(2, str(tmp_path))
    for start in range(0, len(frame), 70):  # validation's chunks
        sink(frame.iloc[start : start + 70])
    written = sink.finish(2)
    assert sum(writer.rows for writer in written.values()) == len(frame) == sink.rows
    for shard, writer in written.items():
        groups = read_all(writer.path)
        assert len(groups) > 1 and max(len(group) for group in groups) < 50 + 70  # a buffer is written once it reaches 50
        rows = pd.concat(groups)
        assert (shards.shard_of(rows[schema.ITEM], rows[schema.STORE], 2) == shard).all()
    assert sink.resolution_rows.sum() == len(frame)


def test_the_sink_splits_its_files_when_the_upload_needs_more_shards(tmp_path):
    frame = sales()
    sink = shard_store.ShardSink(1, str(tmp_path))
    sink(frame)
    written = sink.finish(4)
    assert sorted(written) == [0, 1, 2, 3] and sorted(path.name for path in tmp_path.iterdir()) == [
        f"n4-s{shard}.parquet" for shard in range(4)
    ]  # the n=1 file went once split
    back = []
    for shard, writer in written.items():
        rows = pd.concat(read_all(writer.path))
        assert (shards.shard_of(rows[schema.ITEM], rows[schema.STORE], 4) == shard).all() and len(rows) == writer.rows
        back.append(rows)
    combined = pd.concat(back).sort_values(list(schema.ROW_KEY)).reset_index(drop=True)
    pd.testing.assert_frame_equal(combined, shard_store.canonical(frame).sort_values(list(schema.ROW_KEY)).reset_index(drop=True))


@pytest.mark.parametrize("count", [1, 2, 8, 1024])
def test_index_row_counts_are_exact_up_to_the_resolution(count):
    frame = sales(items=300, days=2)
    fine = shards.shard_of(frame[schema.ITEM], frame[schema.STORE], shard_store.INDEX_RESOLUTION)
    index = shard_store.upload_index(
        "raw/s/a.csv", 2, shard_store.INDEX_RESOLUTION, np.bincount(fine, minlength=shard_store.INDEX_RESOLUTION)
    )
    actual = pd.Series(shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count)).value_counts().to_dict()
    assert shard_store.shard_rows([index], count) == actual
    assert sum(index["rows"].values()) == len(frame) and index["shard_count"] == 2


def test_index_rows_past_the_resolution_are_spread_evenly_and_uploads_add_up():
    index = {"shard_count": 1, "rows": {"0": 12}, "resolution": 2, "resolution_rows": {"0": 8, "1": 4}}
    assert shard_store.shard_rows([index], 4) == {0: 4, 1: 2, 2: 4, 3: 2}
    assert shard_store.shard_rows([index, index], 2) == {0: 16, 1: 8}  # the same rows twice: an upper bound


def test_a_split_buffers_its_rows_into_few_large_row_groups(tmp_path, monkeypatch):
    """Splitting 1 -> 4 shards routes the old file's row groups through the buffers: each new
    shard's file holds row groups of about ROW_GROUP_ROWS, not a sliver of every old group."""
    monkeypatch.setattr(shard_store, "ROW_GROUP_ROWS", 60)
    monkeypatch.setattr(shard_store, "BUFFER_ROWS", 10_000)
    frame = sales()
    sink = shard_store.ShardSink(1, str(tmp_path))
    for start in range(0, len(frame), 20):  # small chunks: many small row groups in the n=1 file
        sink(frame.iloc[start : start + 20])
        sink._flush((1, 0))
    written = sink.finish(4)
    for writer in written.values():
        groups = read_all(writer.path)
        assert all(len(group) >= 60 for group in groups[:-1]), [len(group) for group in groups]
    assert sum(writer.rows for writer in written.values()) == len(frame)


class _SlowStorage:
    """A storage whose downloads take a while and record how many run at once (and which part is gone)."""

    def __init__(self, gone=()):
        import threading

        self.gone, self.lock, self.running, self.most = set(gone), threading.Lock(), 0, 0
        self.s3 = type("S3", (), {"exceptions": type("E", (), {"NoSuchKey": KeyError})})()

    def download(self, key, handle, version_id=None):
        import time

        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
        if key in self.gone:
            raise KeyError(key)
        handle.write(key.encode())
        handle.seek(0)
        return f"v-{key}"


def test_parts_download_ahead_in_order_within_the_bounds_and_a_gone_part_is_none(monkeypatch):
    parts = [Part(f"p{n}", "a.csv", 1, 0, size=10) for n in range(9)]
    storage = _SlowStorage(gone={"p3"})
    got = [
        (part.key, None if handle is None else handle.read().decode(), version)
        for part, handle, version in shard_store._downloaded(storage, parts)
    ]
    assert [key for key, _, _ in got] == [part.key for part in parts]
    assert all(text == key and version == f"v-{key}" for key, text, version in got if key != "p3")
    assert got[3] == ("p3", None, None)
    assert 1 < storage.most <= shard_store.PREFETCH_PARTS
    monkeypatch.setattr(shard_store, "PREFETCH_BYTES", 25)  # two parts of 10 bytes fit, a third does not
    storage = _SlowStorage()
    assert len(list(shard_store._downloaded(storage, parts))) == 9 and storage.most == 2


def test_a_reader_that_stops_early_closes_the_files_downloaded_ahead():
    parts = [Part(f"p{n}", "a.csv", 1, 0, size=10) for n in range(6)]
    opened = []
    storage = _SlowStorage()
    original = storage.download

    def tracking(key, handle, version_id=None):
        opened.append(handle)
        return original(key, handle)

    storage.download = tracking
    reader = shard_store._downloaded(storage, parts)
    next(reader)
    reader.close()
    assert len(opened) > 1 and all(handle.closed for handle in opened)
