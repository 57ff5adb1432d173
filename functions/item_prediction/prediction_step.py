"""The Predictions step: train (with its backtest) or load the latest model, forecast, store.

Modes:

* ``train_and_predict`` (default): backtest on the last ``horizon`` periods against seasonal
  naive, fit on everything, save ``models/<dataset>/<version>/model.joblib`` and
  ``metadata.json``, point ``models/<dataset>/latest.json`` at it, then forecast;
* ``predict``: forecast with the model ``models/<dataset>/latest.json`` points at (fails with a
  clear message when there is none yet).

Predictions go to DynamoDB (``pk = ITEM#<item>#STORE#<store or _>``, ``sk = DATE#<yyyy-mm-dd>``;
a re-run overwrites the same items, never duplicates) and to S3 as
``predictions/<dataset>/<version>/predictions.csv.gz``.
"""

from __future__ import annotations

import pandas as pd

from . import model, records, schema
from .settings import Settings
from .steps import NothingToDo
from .storage import Storage

MODES = ("train_and_predict", "predict")


def load_features(storage: Storage, manifest_key: str) -> tuple[pd.DataFrame, dict]:
    manifest = storage.get_json(manifest_key)
    frame = storage.read_csv(manifest["features_key"], version_id=manifest.get("features_version"), dtype={schema.ITEM: "str", schema.STORE: "str"}, keep_default_na=False, na_values=[""])
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    return frame, manifest


def prediction_items(forecast: pd.DataFrame, version: str, dataset: str) -> list[dict]:
    days = forecast[schema.DATE].dt.strftime("%Y-%m-%d")
    return [
        {
            "pk": records.series_pk(item, store),
            "sk": records.date_sk(day),
            "item_id": item,
            "store_id": store,
            "date": day,
            "prediction": round(float(value), 4),
            "model_version": version,
            "dataset": dataset,
        }
        for item, store, day, value in zip(forecast[schema.ITEM], forecast[schema.STORE], days, forecast["prediction"])
    ]


def resolve_horizon(requested, settings: Settings, frequency: str) -> int:
    """The event's horizon, else FORECAST_HORIZON, else the frequency's default (14 days, 8 weeks)."""
    if requested not in (None, "", 0):
        return model.check_horizon(requested)
    return model.check_horizon(settings.forecast_horizon or schema.DEFAULT_HORIZON[frequency])


def run(storage: Storage, settings: Settings, dataset: str, manifest_key: str, *, mode: str = "train_and_predict", horizon=None) -> dict:
    """Run the step; raises NothingToDo when the dataset is too short to train and backtest on."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    frame, manifest = load_features(storage, manifest_key)
    horizon = resolve_horizon(horizon, settings, manifest["frequency"])
    prefix = f"{settings.models_prefix}{dataset}/"
    if mode == "train_and_predict":
        try:
            bundle = model.train(frame, manifest, horizon)
        except model.InsufficientHistory as exc:
            raise NothingToDo(f"not enough history to train and backtest {horizon} periods: {exc}") from None
        version = bundle.metadata["version"]
        model_key = storage.put_bytes(f"{prefix}{version}/model.joblib", bundle.dumps())
        storage.put_json(f"{prefix}{version}/metadata.json", bundle.metadata)
        storage.put_json(f"{prefix}latest.json", {"version": version, "model_key": model_key, "metrics": bundle.metadata["metrics"]})
    else:
        if not storage.exists(f"{prefix}latest.json"):
            raise ValueError(f"mode 'predict' needs a trained model: {prefix}latest.json does not exist; run 'train_and_predict' first")
        model_key = storage.get_json(f"{prefix}latest.json")["model_key"]
        bundle = model.ModelBundle.loads(storage.get_bytes(model_key))
        version = bundle.metadata["version"]
        if bundle.frequency != manifest["frequency"]:
            raise ValueError(f"the latest model is for frequency {bundle.frequency!r}, the features are {manifest['frequency']!r}: retrain")
    forecast = model.forecast(bundle, frame, horizon)
    written = storage.put_items(prediction_items(forecast, version, dataset))
    predictions_key = storage.write_csv(f"{settings.predictions_prefix}{dataset}/{version}/predictions.csv.gz", forecast)
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "mode": mode,
        "model_key": model_key,
        "model_version": version,
        "predictions_key": predictions_key,
        "predictions_written": written,
        "series": int(forecast.groupby([schema.ITEM, schema.STORE]).ngroups),
        "horizon": horizon,
        "forecast_range": [forecast[schema.DATE].min().strftime("%Y-%m-%d"), forecast[schema.DATE].max().strftime("%Y-%m-%d")],
        "metrics": bundle.metadata["metrics"],
    }
