"""The Predictions step's storing against moto: a run's items, then the flip; the model's SHA-256."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from botocore.exceptions import ClientError
from item_prediction.aws import runtime, table_keys
from item_prediction.ml import model
from item_prediction.steps import predict as predict_step

from .test_api import call


def forecast(first: str, value: float, *, days: int = 4) -> pd.DataFrame:
    dates = pd.date_range(first, periods=days, freq="D")
    return pd.DataFrame({"date": dates, "item_id": "ITEM-000", "store_id": "_", "prediction": [value] * days})


def run(version: str, horizon: int = 4) -> dict:
    return {
        "model_version": version,
        "model_key": f"models/sales/{version}/model.joblib",
        "features_fingerprint": "f",
        "horizon": horizon,
    }


def publish(storage, version: str, value: float, first: str = "2030-01-01") -> dict:
    return predict_step.publish(
        storage, runtime.settings(), "sales", forecast(first, value), run(version), today=date(2030, 1, 1)
    )


def test_a_run_is_shown_once_published_and_replaces_the_previous_one(table):
    old = publish(table, "old", 1.0)
    status, body, _ = call()
    assert (
        status == 200
        and body["forecast_id"] == old["forecast_id"]
        and {row["prediction"] for row in body["predictions"]} == {1.0}
    )
    assert old["predictions_key"] == f"predictions/sales/{old['forecast_id']}/predictions.csv.gz"
    new = publish(table, "new", 2.0, first="2030-01-03")
    body = call()[1]
    assert body["forecast_id"] == new["forecast_id"] != old["forecast_id"]
    assert [(row["date"], row["prediction"]) for row in body["predictions"]] == [(f"2030-01-0{d}", 2.0) for d in range(3, 7)]


def test_a_failure_before_the_flip_leaves_the_previous_forecast_on_display(table, monkeypatch):
    old = publish(table, "old", 1.0)
    seen = {}

    def failing_flip(item):
        """The pointer write fails; by then every item of the new run is already written."""
        run_id = item["forecast_id"]
        seen["series"] = table.get_item(table_keys.series_key("sales", run_id, "ITEM-000", "_"))
        seen["csv"] = table.exists(f"predictions/sales/{run_id}/predictions.csv.gz")
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "pointer write failed"}}, "PutItem")

    monkeypatch.setattr(type(table), "put_item", lambda self, item: failing_flip(item))
    with pytest.raises(ClientError, match="pointer write failed"):
        publish(table, "new", 2.0)
    assert len(seen["series"]["dates"]) == 4 and seen["csv"]  # the series' item and CSV first, the flip last
    status, body, _ = call()
    assert (
        status == 200
        and body["forecast_id"] == old["forecast_id"]
        and {row["prediction"] for row in body["predictions"]} == {1.0}
    )


def test_the_pointer_says_which_run_is_current(table):
    published = publish(table, "v1", 1.0)
    pointer = table.get_item(table_keys.current_key("sales"))
    assert pointer["forecast_id"] == published["forecast_id"] and pointer["model_key"] == "models/sales/v1/model.joblib"
    assert pointer["forecast_range"] == ["2030-01-01", "2030-01-04"] and pointer["horizon"] == 4 and pointer["updated_at"]


@pytest.mark.parametrize(
    ("last_day", "today", "expires"),
    [
        (date(2030, 1, 10), date(2030, 1, 1), datetime(2030, 2, 14, tzinfo=UTC)),  # 35 days after the last forecast date
        (date(2024, 1, 10), date(2030, 1, 1), datetime(2030, 2, 5, tzinfo=UTC)),  # a forecast in the past: 35 days from today
    ],
)
def test_items_expire_35_days_after_the_forecast(last_day, today, expires):
    assert predict_step.expires_at(last_day, today) == int(expires.timestamp())


def test_items_carry_the_run_and_its_expiry(table):
    published = publish(table, "v1", 1.0)
    series = table.get_item(table_keys.series_key("sales", published["forecast_id"], "ITEM-000", "_"))
    assert (series["forecast_id"], series["dataset"], int(series["expires_at"])) == (
        published["forecast_id"],
        "sales",
        int(datetime(2030, 2, 8, tzinfo=UTC).timestamp()),
    )
    assert published["predictions_written"] == 4 and published["items_written"] == 1  # rows, and items: one per series


class FakeBundle:
    metadata = {"version": "v1", "metrics": {"mae": 1.0}}

    def dumps(self) -> bytes:
        return b"model bytes"


def test_latest_json_follows_the_model_and_records_its_sha256(table, monkeypatch):
    order = []
    original = type(table).put_bytes
    monkeypatch.setattr(type(table), "put_bytes", lambda self, key, data, *a: order.append(key) or original(self, key, data, *a))
    predict_step.save_model(table, "models/sales/", FakeBundle())
    assert order == ["models/sales/v1/model.joblib", "models/sales/v1/metadata.json", "models/sales/latest.json"]
    latest = table.get_json("models/sales/latest.json")
    assert (
        latest["model_sha256"] == hashlib.sha256(b"model bytes").hexdigest()
        and latest["model_key"] == "models/sales/v1/model.joblib"
    )


@pytest.fixture
def loads(monkeypatch):
    """Records what would be unpickled, and unpickles nothing."""
    calls = []
    monkeypatch.setattr(model.ModelBundle, "loads", staticmethod(lambda data: calls.append(data) or "bundle"))
    return calls


def put_latest(storage, model_bytes: bytes, sha: str | None) -> None:
    storage.put_bytes("models/sales/v1/model.joblib", model_bytes)
    latest = {"version": "v1", "model_key": "models/sales/v1/model.joblib", **({"model_sha256": sha} if sha else {})}
    storage.put_bytes("models/sales/latest.json", json.dumps(latest).encode())


def test_predict_loads_a_model_whose_bytes_match(table, loads):
    put_latest(table, b"trusted", hashlib.sha256(b"trusted").hexdigest())
    assert predict_step.load_latest_model(table, "models/sales/") == ("bundle", "models/sales/v1/model.joblib")
    assert loads == [b"trusted"]


@pytest.mark.parametrize(
    ("sha", "message"),
    [
        (hashlib.sha256(b"trusted").hexdigest(), "refusing to load models/sales/v1/model.joblib: its SHA-256 is"),
        (None, "records no model_sha256"),
    ],
)
def test_predict_refuses_a_model_latest_json_does_not_vouch_for(table, loads, sha, message):
    put_latest(table, b"replaced by someone", sha)
    with pytest.raises(predict_step.ModelIntegrityError, match=message):
        predict_step.load_latest_model(table, "models/sales/")
    assert loads == []  # never unpickled
