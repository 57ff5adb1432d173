"""The Predictions step against moto: its items' expiry, latest.json and the model's SHA-256 (the
flip of a run's forecast is the Aggregate step's: tests/integration/test_handlers_moto.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from item_prediction.aws import table_keys
from item_prediction.ml import model
from item_prediction.steps import predict as predict_step


@pytest.mark.parametrize(
    ("last_day", "today", "expires"),
    [
        (date(2030, 1, 10), date(2030, 1, 1), datetime(2030, 2, 14, tzinfo=UTC)),  # 35 days after the last forecast date
        (date(2024, 1, 10), date(2030, 1, 1), datetime(2030, 2, 5, tzinfo=UTC)),  # a forecast in the past: 35 days from today
    ],
)
def test_items_expire_35_days_after_the_forecast(last_day, today, expires):
    assert table_keys.expires_at(last_day, today) == int(expires.timestamp())


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


def test_predict_without_a_trained_model_says_to_train_first(table, loads):
    with pytest.raises(ValueError, match="mode 'predict' needs a trained model: models/sales/latest.json does not exist"):
        predict_step.load_latest_model(table, "models/sales/")
    assert loads == []


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
