"""The Predictions step: train (with its backtest) or load the latest model, forecast, store."""

from __future__ import annotations

import pandas as pd

from . import model, records, schema
from .settings import Settings
from .storage import Storage

MODES = ("train_and_predict", "predict")


def load_features(storage: Storage, manifest_key: str) -> tuple[pd.DataFrame, dict]:
    manifest = storage.get_json(manifest_key)
    frame = storage.read_csv(manifest["features_key"], dtype={schema.ITEM: "str", schema.STORE: "str"}, keep_default_na=False, na_values=[""])
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


def run(storage: Storage, settings: Settings, dataset: str, manifest_key: str, *, mode: str = "train_and_predict", horizon: int | None = None) -> dict:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    frame, manifest = load_features(storage, manifest_key)
    horizon = horizon or settings.forecast_horizon or schema.DEFAULT_HORIZON[manifest["frequency"]]
    prefix = f"{settings.models_prefix}{dataset}/"
    if mode == "train_and_predict":
        bundle = model.train(frame, manifest, horizon)
        version = bundle.metadata["version"]
        model_key = storage.put_bytes(f"{prefix}{version}/model.joblib", bundle.dumps())
        storage.put_json(f"{prefix}{version}/metadata.json", bundle.metadata)
        storage.put_json(f"{prefix}latest.json", {"version": version, "model_key": model_key})
    else:
        latest = storage.get_json(f"{prefix}latest.json")
        model_key = latest["model_key"]
        bundle = model.ModelBundle.loads(storage.get_bytes(model_key))
        version = bundle.metadata["version"]
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
        "metrics": bundle.metadata["metrics"],
    }
