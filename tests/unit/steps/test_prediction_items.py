"""A run's DynamoDB items (steps.predict.prediction_items): one per series, its forecast in one string attribute."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from item_prediction.aws import series_item, table_keys
from item_prediction.aws.storage import Storage
from item_prediction.domain import schema
from item_prediction.ml import model
from item_prediction.steps import predict

from ...conftest import create_predictions_table

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


@pytest.fixture
def table(moto_aws):
    """A Storage on a moto predictions table (keyed as template.yaml declares it)."""
    create_predictions_table("predictions")
    return Storage("unused-bucket", "predictions")


SCALARS = {"pk", "sk", "item_id", "store_id", "dataset", "forecast_id", "model_version", "expires_at"}


def test_one_item_per_series_with_its_dates_and_values_in_date_order():
    frame = forecast([("A", "S1"), ("A", "S2"), ("B#1", "_")], days=4)
    items = predict.prediction_items(frame, "v1", "sales", "run-1", 123)
    assert len(items) == 3
    for item in items:
        rows = frame[(frame[schema.ITEM] == item["item_id"]) & (frame[schema.STORE] == item["store_id"])].sort_values("date")
        assert {k: item[k] for k in ("pk", "sk")} == table_keys.series_key("sales", "run-1", item["item_id"], item["store_id"])
        stored = series_item.decode(item)
        assert item["sk"] == "SERIES" and stored["dates"] == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
        for name in ("prediction", "p10", "p50", "p90"):
            assert stored[name] == [round(value, 4) for value in rows[name]], name
        assert (item["dataset"], item["forecast_id"], item["model_version"], item["expires_at"]) == ("sales", "run-1", "v1", 123)


def test_the_forecast_is_one_compact_json_string_beside_the_scalar_attributes():
    item = predict.prediction_items(forecast([("A", "S1")], days=2), "v1", "sales", "run-1", 1)[0]
    assert set(item) == SCALARS | {"forecast", "forecast_format"} and item["forecast_format"] == series_item.FORMAT
    assert isinstance(item["forecast"], str) and " " not in item["forecast"]
    assert list(json.loads(item["forecast"])) == ["dates", "prediction", "p10", "p90"]  # p50 = prediction, left out


def test_quantiles_are_stored_only_when_the_forecast_has_them():
    plain = predict.prediction_items(forecast([("A", "_")], days=3, quantiles=False), "v1", "sales", "run-1", 1)[0]
    assert set(series_item.decode(plain)) == {"dates", "prediction"} and len(series_item.decode(plain)["prediction"]) == 3
    banded = predict.prediction_items(forecast([("A", "_")], days=3), "v1", "sales", "run-1", 1)[0]
    assert {"p10", "p50", "p90"} <= set(series_item.decode(banded))


def test_an_empty_forecast_writes_no_item():
    assert predict.prediction_items(forecast([], days=3), "v1", "sales", "run-1", 1) == []


def test_storage_writes_the_item_as_it_is_and_reads_it_back(table):
    """No Decimal anywhere: the forecast is a string, the rest strings and integers."""
    frame = forecast([("A", "S1"), ("B", "S1")], days=3)
    items = predict.prediction_items(frame, "v1", "sales", "run-1", 1)
    assert table.put_items(items) == 2
    for item in items:
        stored = table.get_item({"pk": item["pk"], "sk": item["sk"]})
        assert stored == item and series_item.decode(stored) == series_item.decode(item)


def dynamodb_size(value) -> int:
    """An item attribute's size by DynamoDB's documented rules: strings their UTF-8 bytes, numbers
    at most 21 bytes (charged 21 here)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, int | float):
        return 21
    raise TypeError(type(value))


@pytest.mark.parametrize("quantiles", [True, False])
def test_the_longest_forecast_stays_well_under_dynamodbs_item_limit(quantiles):
    """366 periods (model.MAX_HORIZON), the quantiles, ids and dataset at their longest (4-byte
    characters), every number at a double's longest text (24 characters) and p50 apart from the prediction."""
    longest_id = "\U0001d518" * schema.MAX_ID_LENGTH
    frame = forecast([(longest_id, longest_id)], days=model.MAX_HORIZON, quantiles=quantiles)
    frame = frame.assign(**{name: -1.2345678901234567e300 for name in ("prediction", "p10", "p90") if name in frame})
    frame = frame.assign(**({"p50": -2.2345678901234567e300} if quantiles else {}))
    item = predict.prediction_items(frame, "v" * 40, "d" * 64, "f" * 60, 2_000_000_000)[0]
    stored = series_item.decode(item)
    assert len(stored["dates"]) == model.MAX_HORIZON and len(repr(stored["prediction"][0])) == 24
    assert len(stored) == (5 if quantiles else 2)  # p50 kept: it differs from the prediction here
    size = sum(len(name.encode()) + dynamodb_size(value) for name, value in item.items())
    assert size < DYNAMODB_ITEM_LIMIT / 8, size  # about 44 KB with the quantiles: a ninth of the limit
