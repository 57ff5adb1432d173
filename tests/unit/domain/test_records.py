import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from item_prediction import records

# Names and ids built from the keys' own pieces find a collision quickly when escaping is missing.
datasets = st.sampled_from(["d", "e"]) | st.from_regex(records.DATASET_PATTERN)
pieces = st.lists(st.sampled_from(["A", "#", "%", "23", "STORE", "ITEM", "_"]), min_size=1, max_size=6).map("".join)
ids = pieces | st.text(min_size=1, max_size=records.MAX_ID_LENGTH)


def test_keys_name_the_dataset_the_run_and_the_series():
    assert records.prediction_pk("sales", "v1-abcd", "A", None) == "DS#sales#RUN#v1-abcd#ITEM#A#STORE#_"
    assert records.prediction_pk("sales", "v1-abcd", "A", "S1") == "DS#sales#RUN#v1-abcd#ITEM#A#STORE#S1"
    assert records.date_sk("2024-01-02") == "DATE#2024-01-02"
    assert records.current_key("sales") == {"pk": "DS#sales", "sk": "CURRENT"}


def test_a_crafted_id_cannot_take_another_series_key():
    # Unescaped, item "A#STORE#B" without a store and item "A" in store "B#STORE#_" read alike.
    crafted = records.prediction_pk("d", "r", "A#STORE#B", "_")
    assert crafted != records.prediction_pk("d", "r", "A", "B#STORE#_")
    assert crafted == "DS#d#RUN#r#ITEM#A%23STORE%23B#STORE#_"
    assert records.esc("100%#") == "100%25%23"


@given(st.text())
def test_unescaping_gives_the_id_back(text):
    assert records.unesc(records.esc(text)) == text
    assert "#" not in records.esc(text)


@given(datasets, ids, ids)
def test_a_key_splits_back_into_its_series(dataset, item, store):
    """A left inverse exists, so the key function is injective: no two series share a key."""
    fields = records.prediction_pk(dataset, "run", item, store).split("#")
    assert fields[::2] == ["DS", "RUN", "ITEM", "STORE"]
    assert [records.unesc(field) for field in fields[1::2]] == [dataset, "run", item, store]


@given(st.tuples(datasets, ids, ids), st.tuples(datasets, ids, ids))
def test_distinct_series_have_distinct_keys(first, second):
    if first != second:
        assert records.prediction_pk(first[0], "run", first[1], first[2]) != records.prediction_pk(
            second[0], "run", second[1], second[2]
        )


def test_the_run_is_named_by_model_features_and_horizon():
    run = records.forecast_id("m1", "f1", 14)
    assert run.startswith("m1-") and run == records.forecast_id("m1", "f1", 14)
    assert (
        len({run, records.forecast_id("m1", "f2", 14), records.forecast_id("m1", "f1", 7), records.forecast_id("m2", "f1", 14)})
        == 4
    )


def test_query_defaults_to_every_date_and_a_page_of_100():
    query = records.parse_query("sales", "A", None)
    assert query.pk("run") == "DS#sales#RUN#run#ITEM#A#STORE#_" and query.limit == 100 and query.token is None
    assert query.sk_from < "DATE#1990" and query.sk_to > "DATE#2999"


@pytest.mark.parametrize(
    ("params", "sk_from", "sk_to"),
    [
        ({"from": "2024-01-01"}, "DATE#2024-01-01", "DATE#2024-12-31"),  # 366 days from the one bound
        ({"to": "2024-12-31"}, "DATE#2024-01-01", "DATE#2024-12-31"),
        ({"from": "2024-01-01", "to": "2024-12-31"}, "DATE#2024-01-01", "DATE#2024-12-31"),
    ],
)
def test_one_bound_alone_covers_at_most_366_days(params, sk_from, sk_to):
    query = records.parse_query("sales", "A", params)
    assert (query.sk_from, query.sk_to) == (sk_from, sk_to)


def token(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    ("dataset", "item", "params", "message"),
    [
        ("sales", "", {}, "item_id is required"),
        ("sales", "A" * 129, {}, "item_id is required"),
        ("sales", "A", {"store": "S" * 129}, "'store' has at most 128"),
        ("..", "A", {}, "not a dataset name"),
        ("a b", "A", {}, "not a dataset name"),
        ("x" * 65, "A", {}, "not a dataset name"),
        ("sales", "A", {"from": "2024-02-30"}, "'from' must be a date"),
        ("sales", "A", {"to": "20240201"}, "'to' must be a date"),
        ("sales", "A", {"from": "2024-03-01", "to": "2024-02-01"}, "'from' is after 'to'"),
        ("sales", "A", {"from": "2024-01-01", "to": "2025-01-01"}, "at most 366 days"),  # 367 dates
        ("sales", "A", {"shop": "S1"}, "unknown query parameters"),
        ("sales", "A", {"limit": "0"}, "'limit' must be"),
        ("sales", "A", {"limit": "367"}, "'limit' must be"),
        ("sales", "A", {"limit": "ten"}, "'limit' must be"),
        ("sales", "A", {"next_token": "not base64!"}, "'next_token' is not one"),
        ("sales", "A", {"next_token": token({"pk": "x"})}, "'next_token' is not one"),
        ("sales", "A", {"next_token": token({"pk": "x", "sk": "CURRENT"})}, "'next_token' is not one"),
        ("sales", "A", {"next_token": "A" * 3000}, "'next_token' is not one"),
    ],
)
def test_bad_queries_are_400s_with_a_reason(dataset, item, params, message):
    with pytest.raises(records.QueryError, match=message):
        records.parse_query(dataset, item, params)


def test_a_token_continues_only_its_own_request():
    key = {"pk": records.prediction_pk("sales", "run1", "A", None), "sk": "DATE#2024-01-05"}
    query = records.parse_query("sales", "A", {"next_token": records.encode_token(key)})
    assert query.start_key("run1") == key
    with pytest.raises(records.QueryError, match="forecast since replaced"):
        query.start_key("run2")
    other = records.parse_query("sales", "B", {"next_token": records.encode_token(key)})
    with pytest.raises(records.QueryError, match="another request"):
        other.start_key("run1")
    later = records.parse_query("sales", "A", {"from": "2024-02-01", "next_token": records.encode_token(key)})
    with pytest.raises(records.QueryError, match="another request"):
        later.start_key("run1")
