"""A run's DynamoDB items (steps.predict.prediction_items): one per series, its forecast as lists."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from item_prediction.aws import table_keys
from item_prediction.aws.storage import _decimals
from item_prediction.domain import schema
from item_prediction.ml import model
from item_prediction.steps import predict

DYNAMODB_ITEM_LIMIT = 400 * 1024  # bytes


def forecast(series: list[tuple[str, str]], days: int, *, quantiles: bool = True, seed: int = 0) -> pd.DataFrame:
    """``days`` forecast rows per series, rows shuffled (the items must not rely on the frame's order)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-03-01", periods=days, freq="D")
    frame = pd.DataFrame(
        [(day, item, store) for item, store in series for day in dates], columns=[schema.DATE, schema.ITEM, schema.STORE]
    )
    frame["prediction"] = rng.uniform(0, 1000, len(frame))
    if quantiles:
        frame = frame.assign(p10=frame["prediction"] * 0.5, p50=frame["prediction"], p90=frame["prediction"] * 2)
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def test_one_item_per_series_with_its_dates_and_values_in_date_order():
    frame = forecast([("A", "S1"), ("A", "S2"), ("B#1", "_")], days=4)
    items = predict.prediction_items(frame, "v1", "sales", "run-1", 123)
    assert len(items) == 3
    for item in items:
        rows = frame[(frame[schema.ITEM] == item["item_id"]) & (frame[schema.STORE] == item["store_id"])].sort_values("date")
        assert {k: item[k] for k in ("pk", "sk")} == table_keys.series_key("sales", "run-1", item["item_id"], item["store_id"])
        assert item["sk"] == "SERIES" and item["dates"] == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
        for name in ("prediction", "p10", "p50", "p90"):
            assert item[name] == [round(value, 4) for value in rows[name]], name
        assert (item["dataset"], item["forecast_id"], item["model_version"], item["expires_at"]) == ("sales", "run-1", "v1", 123)


def test_quantiles_are_stored_only_when_the_forecast_has_them():
    plain = predict.prediction_items(forecast([("A", "_")], days=3, quantiles=False), "v1", "sales", "run-1", 1)[0]
    assert {"p10", "p50", "p90"}.isdisjoint(plain) and len(plain["prediction"]) == 3
    banded = predict.prediction_items(forecast([("A", "_")], days=3), "v1", "sales", "run-1", 1)[0]
    assert {"p10", "p50", "p90"} <= set(banded)


def test_an_empty_forecast_writes_no_item():
    assert predict.prediction_items(forecast([], days=3), "v1", "sales", "run-1", 1) == []


def test_storage_writes_the_lists_as_decimals():
    item = predict.prediction_items(forecast([("A", "_")], days=2), "v1", "sales", "run-1", 1)[0]
    stored = _decimals(item)
    assert stored["prediction"] == [Decimal(str(value)) for value in item["prediction"]]
    assert stored["dates"] == item["dates"] and stored["expires_at"] == 1


def dynamodb_size(value) -> int:
    """An upper bound of an attribute value's size by DynamoDB's documented rules: strings their
    UTF-8 bytes, numbers at most 21 bytes (charged 21 here), lists and maps 3 bytes plus 1 per element."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, int | float | Decimal):
        return 21
    if isinstance(value, list):
        return 3 + sum(1 + dynamodb_size(element) for element in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(name.encode()) + dynamodb_size(element) for name, element in value.items())
    raise TypeError(type(value))


@pytest.mark.parametrize("quantiles", [True, False])
def test_the_longest_forecast_stays_well_under_dynamodbs_item_limit(quantiles):
    """366 periods (model.MAX_HORIZON), the quantiles, ids and dataset at their longest (4-byte characters)."""
    longest_id = "\U0001d518" * schema.MAX_ID_LENGTH
    frame = forecast([(longest_id, longest_id)], days=model.MAX_HORIZON, quantiles=quantiles)
    item = predict.prediction_items(frame, "v" * 40, "d" * 64, "f" * 60, 2_000_000_000)[0]
    size = sum(len(name.encode()) + dynamodb_size(value) for name, value in _decimals(item).items())
    assert len(item["dates"]) == model.MAX_HORIZON
    assert size < DYNAMODB_ITEM_LIMIT / 10, size  # about 39 KB with the quantiles: a tenth of the limit
