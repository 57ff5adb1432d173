import pytest

from item_prediction import records


def test_keys():
    assert records.series_pk("A", None) == "ITEM#A#STORE#_"
    assert records.series_pk("A", "S1") == "ITEM#A#STORE#S1"
    assert records.date_sk("2024-01-02") == "DATE#2024-01-02"


def test_query_defaults_to_every_date():
    query = records.parse_query("A", None)
    assert query["pk"] == "ITEM#A#STORE#_" and query["sk_from"] < "DATE#1990" and query["sk_to"] > "DATE#2999"


@pytest.mark.parametrize(
    ("item", "params", "message"),
    [
        ("", {}, "item_id is required"),
        ("A", {"from": "2024-02-30"}, "'from' must be a date"),
        ("A", {"from": "2024-03-01", "to": "2024-02-01"}, "'from' is after 'to'"),
        ("A", {"from": "2020-01-01", "to": "2024-01-01"}, "at most 366 days"),
        ("A", {"shop": "S1"}, "unknown query parameters"),
    ],
)
def test_bad_queries_are_400s_with_a_reason(item, params, message):
    with pytest.raises(records.QueryError, match=message):
        records.parse_query(item, params)
