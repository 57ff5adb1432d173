"""A series item's forecast attribute (aws.series_item): one JSON string, written and read by one rule."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from item_prediction.aws import series_item

DATES = ["2024-03-01", "2024-03-02"]


def test_encode_then_decode_gives_the_forecast_back():
    values = {"prediction": [1.5, 2.25], "p10": [0.5, 1.0], "p50": [1.0, 2.0], "p90": [3.0, 4.0]}
    item = {"pk": "p", **series_item.encode(DATES, values)}
    assert item["forecast_format"] == series_item.FORMAT and isinstance(item["forecast"], str)
    assert series_item.decode(item) == {"dates": DATES, **values}


def test_a_median_equal_to_the_prediction_is_stored_once_and_read_back():
    values = {"prediction": [1.5, 2.25], "p10": [0.5, 1.0], "p50": [1.5, 2.25], "p90": [3.0, 4.0]}
    item = series_item.encode(DATES, values)
    assert "p50" not in json.loads(item["forecast"])
    assert series_item.decode(item) == {"dates": DATES, **values}


def test_a_forecast_without_quantiles_reads_back_without_them():
    item = series_item.encode(DATES, {"prediction": [1.0, 2.0]})
    assert series_item.decode(item) == {"dates": DATES, "prediction": [1.0, 2.0]}


def test_an_item_in_the_earlier_list_layout_is_still_read():
    """Items written before the JSON string (lists, numbers as Decimals) stay live until their TTL."""
    old = {"pk": "p", "sk": "SERIES", "dates": DATES, "prediction": [Decimal("1.5"), Decimal(2)], "p10": [Decimal(1)] * 2}
    assert series_item.decode(old) == {"dates": DATES, "prediction": [Decimal("1.5"), Decimal(2)], "p10": [Decimal(1)] * 2}


def test_a_layout_this_code_does_not_know_is_refused_by_name():
    item = {**series_item.encode(DATES, {"prediction": [1.0, 2.0]}), "forecast_format": Decimal(2)}
    with pytest.raises(series_item.UnknownFormat, match="forecast_format 2; this code reads 1 only"):
        series_item.decode(item)


def test_a_number_json_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="not JSON compliant"):
        series_item.encode(DATES, {"prediction": [1.0, float("nan")]})
