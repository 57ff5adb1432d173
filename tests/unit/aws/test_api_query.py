"""The read API's request contract (item_prediction.aws.api_query): defaults, ranges, refusals, tokens."""

import base64
import json

import pytest
from item_prediction.aws import api_query, table_keys


def test_query_defaults_to_every_date_and_a_page_of_100():
    query = api_query.parse_query("sales", "A", None)
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
    query = api_query.parse_query("sales", "A", params)
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
    with pytest.raises(api_query.QueryError, match=message):
        api_query.parse_query(dataset, item, params)


def test_a_token_continues_only_its_own_request():
    key = {"pk": table_keys.prediction_pk("sales", "run1", "A", None), "sk": "DATE#2024-01-05"}
    query = api_query.parse_query("sales", "A", {"next_token": api_query.encode_token(key)})
    assert query.start_key("run1") == key
    with pytest.raises(api_query.QueryError, match="forecast since replaced"):
        query.start_key("run2")
    other = api_query.parse_query("sales", "B", {"next_token": api_query.encode_token(key)})
    with pytest.raises(api_query.QueryError, match="another request"):
        other.start_key("run1")
    later = api_query.parse_query("sales", "A", {"from": "2024-02-01", "next_token": api_query.encode_token(key)})
    with pytest.raises(api_query.QueryError, match="another request"):
        later.start_key("run1")
