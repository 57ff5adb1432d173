"""The read API's request contract (item_prediction.aws.api_query): defaults, ranges, refusals, tokens."""

import base64
import json
from decimal import Decimal

import pytest
from item_prediction.aws import api_query, series_item, table_keys


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


DAYS = [f"2024-01-0{day}" for day in range(1, 8)]
KEY = {"pk": table_keys.prediction_pk("sales", "run1", "A", None), "sk": table_keys.SERIES_SK}
SERIES = {**KEY, **series_item.encode(DAYS, {"prediction": [float(day) for day in range(1, 8)]})}


def test_a_page_takes_the_dates_asked_for_and_the_token_names_the_last_one():
    query = api_query.parse_query("sales", "A", {"from": "2024-01-02", "to": "2024-01-06", "limit": "3"})
    rows, last = api_query.page(query, SERIES)
    assert [row["date"] for row in rows] == ["2024-01-02", "2024-01-03", "2024-01-04"] and "p10" not in rows[0]
    assert last == {"pk": SERIES["pk"], "sk": "DATE#2024-01-04"}
    following = api_query.parse_query(
        "sales", "A", {"from": "2024-01-02", "to": "2024-01-06", "limit": "3", "next_token": api_query.encode_token(last)}
    )
    assert following.start_key("run1") == last
    rows, last = api_query.page(following, SERIES)
    assert [(row["date"], row["prediction"]) for row in rows] == [("2024-01-05", 5), ("2024-01-06", 6)] and last is None


def test_a_page_carries_the_quantiles_the_item_stored():
    halves = [day / 2 for day in range(1, 8)]
    banded = {**KEY, **series_item.encode(DAYS, {"prediction": [1.0] * 7, "p10": halves, "p50": halves, "p90": halves})}
    rows, _ = api_query.page(api_query.parse_query("sales", "A", {"limit": "1"}), banded)
    assert api_query.present(rows) == [{"date": "2024-01-01", "prediction": 1.0, "p10": 0.5, "p50": 0.5, "p90": 0.5}]


def test_an_item_in_the_earlier_list_layout_pages_the_same():
    """Written before the forecast became one JSON string (lists of Decimals), live until its TTL."""
    old = {**KEY, "dates": DAYS, **{name: [Decimal(day) for day in range(1, 8)] for name in ("prediction", "p10", "p50", "p90")}}
    query = api_query.parse_query("sales", "A", {"from": "2024-01-02", "limit": "2"})
    rows, last = api_query.page(query, old)
    assert api_query.present(rows) == [
        {"date": day, "prediction": value, "p10": value, "p50": value, "p90": value}
        for day, value in (("2024-01-02", 2.0), ("2024-01-03", 3.0))
    ]
    assert last == {"pk": KEY["pk"], "sk": "DATE#2024-01-03"} and api_query.page(query, SERIES)[1] == last


def test_dates_outside_the_series_are_an_empty_last_page():
    rows, last = api_query.page(api_query.parse_query("sales", "A", {"from": "2025-01-01"}), SERIES)
    assert rows == [] and last is None
