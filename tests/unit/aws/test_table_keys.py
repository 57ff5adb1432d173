"""The predictions table's keys (item_prediction.aws.table_keys): layout, escaping, run ids."""

from hypothesis import given
from hypothesis import strategies as st
from item_prediction.aws import table_keys
from item_prediction.domain import schema

# Names and ids built from the keys' own pieces find a collision quickly when escaping is missing.
datasets = st.sampled_from(["d", "e"]) | st.from_regex(schema.DATASET_PATTERN)
pieces = st.lists(st.sampled_from(["A", "#", "%", "23", "STORE", "ITEM", "_"]), min_size=1, max_size=6).map("".join)
ids = pieces | st.text(min_size=1, max_size=schema.MAX_ID_LENGTH)


def test_keys_name_the_dataset_the_run_and_the_series():
    assert table_keys.prediction_pk("sales", "v1-abcd", "A", None) == "DS#sales#RUN#v1-abcd#ITEM#A#STORE#_"
    assert table_keys.prediction_pk("sales", "v1-abcd", "A", "S1") == "DS#sales#RUN#v1-abcd#ITEM#A#STORE#S1"
    assert table_keys.date_sk("2024-01-02") == "DATE#2024-01-02"
    assert table_keys.series_key("sales", "v1-abcd", "A", None) == {"pk": "DS#sales#RUN#v1-abcd#ITEM#A#STORE#_", "sk": "SERIES"}
    assert table_keys.current_key("sales") == {"pk": "DS#sales", "sk": "CURRENT"}


def test_a_crafted_id_cannot_take_another_series_key():
    # Unescaped, item "A#STORE#B" without a store and item "A" in store "B#STORE#_" read alike.
    crafted = table_keys.prediction_pk("d", "r", "A#STORE#B", "_")
    assert crafted != table_keys.prediction_pk("d", "r", "A", "B#STORE#_")
    assert crafted == "DS#d#RUN#r#ITEM#A%23STORE%23B#STORE#_"
    assert table_keys.esc("100%#") == "100%25%23"


@given(st.text())
def test_unescaping_gives_the_id_back(text):
    assert table_keys.unesc(table_keys.esc(text)) == text
    assert "#" not in table_keys.esc(text)


@given(datasets, ids, ids)
def test_a_key_splits_back_into_its_series(dataset, item, store):
    """A left inverse exists, so the key function is injective: no two series share a key."""
    fields = table_keys.prediction_pk(dataset, "run", item, store).split("#")
    assert fields[::2] == ["DS", "RUN", "ITEM", "STORE"]
    assert [table_keys.unesc(field) for field in fields[1::2]] == [dataset, "run", item, store]


@given(st.tuples(datasets, ids, ids), st.tuples(datasets, ids, ids))
def test_distinct_series_have_distinct_keys(first, second):
    if first != second:
        assert table_keys.prediction_pk(first[0], "run", first[1], first[2]) != table_keys.prediction_pk(
            second[0], "run", second[1], second[2]
        )


def test_the_run_is_named_by_model_features_and_horizon():
    run = table_keys.forecast_id("m1", "f1", 14)
    assert run.startswith("m1-") and run == table_keys.forecast_id("m1", "f1", 14)
    assert (
        len(
            {
                run,
                table_keys.forecast_id("m1", "f2", 14),
                table_keys.forecast_id("m1", "f1", 7),
                table_keys.forecast_id("m2", "f1", 14),
            }
        )
        == 4
    )


def test_the_api_shard_of_a_series_is_the_pipelines():
    """The read API's stdlib shard function agrees with domain.shards.shard_of, key by key."""
    import pandas as pd
    from item_prediction.domain import shards

    items = pd.Series([f"ITEM-{n}" for n in range(300)] + ["a\x1fb", "é#%", "x"])
    stores = pd.Series([f"S{n % 7}" for n in range(300)] + ["c", "_", "_"])
    for count in (1, 2, 8, 64):
        expected = shards.shard_of(items, stores, count)
        assert [table_keys.series_shard(i, s, count) for i, s in zip(items, stores, strict=True)] == list(expected)
    assert table_keys.series_shard("x", None, 8) == table_keys.series_shard("x", "_", 8)


def test_generation_pointers_are_per_dataset_generation_and_shard():
    key = table_keys.shard_pointer_key("sales#x", "run#1", 7)
    assert key == {"pk": "DS#sales%23x#GEN#run%231", "sk": "SHARD#00007"}
