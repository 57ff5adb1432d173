"""The Predictions step: train (with its backtest) or load the latest model, forecast, store.

Modes:

* ``train_and_predict`` (default): backtest on the last ``horizon`` periods against seasonal
  naive, fit on everything, save ``models/<dataset>/<version>/model.joblib`` and
  ``metadata.json``, then point ``models/<dataset>/latest.json`` at it (with the model's
  SHA-256), then forecast;
* ``predict``: forecast with the model ``models/<dataset>/latest.json`` points at, after checking
  its SHA-256 against latest.json (fails with a clear message when there is none yet or the bytes
  differ: nothing is unpickled that latest.json does not vouch for).

Storing switches atomically: the run's forecast goes to DynamoDB under its ``forecast_id``, one
item per series (:func:`prediction_items`; keys in :mod:`item_prediction.aws.table_keys`, with
``expires_at`` for TTL), the CSV to
``predictions/<dataset>/<forecast_id>/predictions.csv.gz``, and only then the dataset's CURRENT
pointer names the run (the flip). A failure before the flip leaves the previous forecast on
display; the superseded run's items expire.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from ..aws import table_keys
from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import schema
from ..ml import model
from . import plan_file
from . import report as reporting
from .envelope import NothingToDo

MODES = ("train_and_predict", "predict")
EXPIRY_DAYS = 35  # a run's items live this long after its last forecast date (or after the run, if later)


class ModelIntegrityError(ValueError):
    """The model's bytes are not the ones latest.json vouches for: never unpickled."""


def load_features(storage: Storage, manifest_key: str) -> tuple[pd.DataFrame, dict]:
    manifest = storage.get_json(manifest_key)
    frame = storage.read_csv(
        manifest["features_key"],
        version_id=manifest.get("features_version"),
        dtype={schema.ITEM: "str", schema.STORE: "str"},
        keep_default_na=False,
        na_values=[""],
    )
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    return frame, manifest


def expires_at(last_day: date, today: date) -> int:
    """TTL (epoch seconds): EXPIRY_DAYS after the last forecast date, counted from today when the
    forecast lies in the past (a backfill), so a current run is not deleted as it is published."""
    end = max(last_day, today) + timedelta(days=EXPIRY_DAYS)
    return int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())


QUANTILES = ("p10", "p50", "p90")  # stored beside ``prediction`` when the forecast has them


def prediction_items(forecast: pd.DataFrame, version: str, dataset: str, forecast_id: str, expiry: int) -> list[dict]:
    """One DynamoDB item per series (``sk`` :data:`table_keys.SERIES_SK`) holding its whole forecast
    as lists in date order: ``dates`` (ISO days), ``prediction`` and ``p10``/``p50``/``p90`` when the
    forecast has them (rounded to 4 places; Storage writes them as Decimals).

    Vectorised: the frame is sorted once and cut where the series changes, one dict per series.
    Size: at most ``model.MAX_HORIZON`` = 366 periods. The largest item (366 periods with the
    quantiles, ids and dataset at their longest, every number at DynamoDB's 21-byte maximum) is about
    39 KB, under a tenth of DynamoDB's 400 KB item limit (about 13 KB with everyday values; a
    14-day series under 1 KB, one write unit where it took 14 items)
    (``tests/unit/steps/test_prediction_items.py``).
    """
    if forecast.empty:
        return []
    ordered = forecast.sort_values([schema.ITEM, schema.STORE, schema.DATE], kind="stable")
    items, stores = ordered[schema.ITEM].to_numpy(dtype=object), ordered[schema.STORE].to_numpy(dtype=object)
    changes = np.flatnonzero((items[1:] != items[:-1]) | (stores[1:] != stores[:-1])) + 1
    starts, ends = [0, *changes.tolist()], [*changes.tolist(), len(ordered)]
    days = ordered[schema.DATE].dt.strftime("%Y-%m-%d").tolist()
    names = ["prediction", *(name for name in QUANTILES if name in ordered)]
    columns = {name: np.round(ordered[name].to_numpy(dtype=float), 4).tolist() for name in names}
    return [
        {
            **table_keys.series_key(dataset, forecast_id, items[start], stores[start]),
            "item_id": items[start],
            "store_id": stores[start],
            "dataset": dataset,
            "forecast_id": forecast_id,
            "model_version": version,
            "expires_at": expiry,
            "dates": days[start:end],
            **{name: values[start:end] for name, values in columns.items()},
        }
        for start, end in zip(starts, ends, strict=True)
    ]


def resolve_horizon(requested, settings: Settings, frequency: str) -> int:
    """The event's horizon, else FORECAST_HORIZON, else the frequency's default (14 days, 8 weeks)."""
    if requested not in (None, "", 0):
        return model.check_horizon(requested)
    return model.check_horizon(settings.forecast_horizon or schema.DEFAULT_HORIZON[frequency])


def save_model(storage: Storage, prefix: str, bundle: model.ModelBundle, extra: dict | None = None) -> str:
    """Model, then metadata, then latest.json (with the model's SHA-256 and ``extra``): latest.json
    never names a model that is not fully written."""
    data = bundle.dumps()
    version = bundle.metadata["version"]
    model_key = storage.put_bytes(f"{prefix}{version}/model.joblib", data)
    storage.put_json(f"{prefix}{version}/metadata.json", bundle.metadata)
    latest = {
        "version": version,
        "model_key": model_key,
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "metrics": bundle.metadata["metrics"],
        **(extra or {}),
    }
    storage.put_json(f"{prefix}latest.json", latest)
    return model_key


def load_latest_model(storage: Storage, prefix: str) -> tuple[model.ModelBundle, str]:
    """The model latest.json points at, once its bytes match the SHA-256 latest.json records."""
    latest_key = f"{prefix}latest.json"
    if not storage.exists(latest_key):
        raise ValueError(f"mode 'predict' needs a trained model: {latest_key} does not exist; run 'train_and_predict' first")
    latest = storage.get_json(latest_key)
    model_key, expected = latest["model_key"], latest.get("model_sha256")
    if not expected:
        raise ModelIntegrityError(
            f"{latest_key} records no model_sha256, so {model_key} cannot be checked: retrain with 'train_and_predict'"
        )
    data = storage.get_bytes(model_key)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelIntegrityError(
            f"refusing to load {model_key}: its SHA-256 is {actual}, {latest_key} records {expected}; "
            "retrain with 'train_and_predict'"
        )
    return model.ModelBundle.loads(data), model_key


def publish(
    storage: Storage,
    settings: Settings,
    dataset: str,
    forecast: pd.DataFrame,
    run: dict,
    *,
    today: date | None = None,
    timer: StepTimer | None = None,
) -> dict:
    """Store a run's forecast and make it the dataset's current one: items, CSV, then the flip
    (timed as ``write_items``, ``write_csv`` and ``flip``).

    ``run`` holds ``model_version``, ``model_key``, ``features_fingerprint`` and ``horizon``.
    """
    timer = timer or StepTimer()
    run_id = table_keys.forecast_id(run["model_version"], run["features_fingerprint"], run["horizon"])
    first, last = forecast[schema.DATE].min().date(), forecast[schema.DATE].max().date()
    expiry = expires_at(last, today or datetime.now(UTC).date())
    with timer("write_items"):
        items_written = storage.put_items(prediction_items(forecast, run["model_version"], dataset, run_id, expiry))
    with timer("write_csv"):
        predictions_key = storage.write_csv(
            f"{settings.predictions_prefix}{dataset}/{run_id}/predictions.csv.gz", forecast, escape_formulas=True
        )
    pointer = {
        "forecast_id": run_id,
        "model_version": run["model_version"],
        "model_key": run["model_key"],
        "predictions_key": predictions_key,
        "horizon": run["horizon"],
        "forecast_range": [first.isoformat(), last.isoformat()],
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with timer("flip"):
        storage.put_item({**table_keys.current_key(dataset), **pointer, "dataset": dataset})  # the flip, last
    return {**pointer, "predictions_written": len(forecast), "items_written": items_written}


def trained_or_latest(
    storage: Storage,
    prefix: str,
    frame: pd.DataFrame,
    manifest: dict,
    horizon: int,
    mode: str,
    timer: StepTimer,
    extra: dict | None = None,
) -> tuple[model.ModelBundle, str, pd.DataFrame | None]:
    """The model to forecast with, its key and its backtest's scored rows: backtested, fitted and
    saved (``train_and_predict``), or the latest one without rows (``predict``); each part timed
    (``backtest``, ``fit``, ``save_model``, ``load_model``)."""
    if mode == "train_and_predict":
        try:
            with timer("fit"):
                window = model.holdout_fit(frame, manifest, horizon)
            with timer("backtest"):
                scores, rows = model.backtest(frame, manifest, horizon, return_rows=True, window=window)
            bundle = model.make_bundle(window.fitted, window.train, manifest, scores)
        except model.InsufficientHistory as exc:
            raise NothingToDo(f"not enough history to train and backtest {horizon} periods: {exc}") from None
        with timer("save_model"):
            return bundle, save_model(storage, prefix, bundle, extra), rows
    with timer("load_model"):
        bundle, model_key = load_latest_model(storage, prefix)
    if bundle.frequency != manifest["frequency"]:
        raise ValueError(
            f"the latest model is for frequency {bundle.frequency!r}, the features are {manifest['frequency']!r}: retrain"
        )
    return bundle, model_key, None


def run(
    storage: Storage,
    settings: Settings,
    dataset: str,
    manifest_key: str,
    *,
    mode: str = "train_and_predict",
    horizon=None,
    timer: StepTimer | None = None,
) -> dict:
    """Run the step; raises NothingToDo when the dataset is too short to train and backtest on.
    ``timer`` gets ``read_features``, the model's parts, ``forecast`` and :func:`publish`'s."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    timer = timer or StepTimer()
    with timer("read_features"):
        frame, manifest = load_features(storage, manifest_key)
    horizon = resolve_horizon(horizon, settings, manifest["frequency"])
    prefix = f"{settings.models_prefix}{dataset}/"
    bundle, model_key, backtest = trained_or_latest(storage, prefix, frame, manifest, horizon, mode, timer)
    version = bundle.metadata["version"]
    with timer("forecast"):
        forecast = model.forecast(bundle, frame, horizon)
    fingerprint = f"{manifest['version']}:{manifest['source_fingerprint']}"
    published = publish(
        storage,
        settings,
        dataset,
        forecast,
        {"model_version": version, "model_key": model_key, "features_fingerprint": fingerprint, "horizon": horizon},
        timer=timer,
    )
    series = int(forecast.groupby([schema.ITEM, schema.STORE]).ngroups)
    published["report_key"] = reporting.publish_report(  # a manual run's page, from its frames
        storage,
        settings,
        dataset,
        frame,
        forecast,
        {**published, "frequency": bundle.frequency, "series": series, "metrics": bundle.metadata["metrics"]},
        backtest=reporting.backtest_frame(backtest),
        timer=timer,
    )
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "mode": mode,
        "model_key": model_key,
        "model_version": version,
        "forecast_id": published["forecast_id"],
        "predictions_key": published["predictions_key"],
        "predictions_written": published["predictions_written"],
        "items_written": published["items_written"],
        "series": series,
        "horizon": horizon,
        "forecast_range": published["forecast_range"],
        "metrics": bundle.metadata["metrics"],
        "report_key": published["report_key"],
    }


# ---- one shard of the fan-out (``"step": "shard"``) ------------------------------------------
def load_shard_features(storage: Storage, manifest_key: str) -> tuple[pd.DataFrame, dict]:
    """A shard's feature set (Parquet, exactly the version its FeatureEngineering wrote) and manifest."""
    manifest = storage.get_json(manifest_key)
    frame = storage.read_parquet(manifest["features_key"], version_id=manifest.get("features_version"))
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    return frame, manifest


def run_shard(
    storage: Storage, settings: Settings, item: dict, *, today: date | None = None, timer: StepTimer | None = None
) -> dict:
    """Train (or load) one shard's model, forecast its series and write them under the run's id.

    Items go to DynamoDB under ``forecast_id = run_id`` (not yet shown: the Aggregate step's
    generation pointers show them), the CSV part to ``predictions/<ds>/<run_id>/shard=<s:05d>.csv.gz``.
    Its slice of the run's report goes to ``runs/<ds>/<run_id>/report/shard=<s:05d>.json``
    (:func:`steps.report.write_slice`; with the backtest's rows when the shard trained).
    Returns a small result (the Distributed Map's ResultWriter keeps it): the backtest's additive
    ``sums`` when the shard trained, counts, the model, the forecast's range, ``report_slice``.
    """
    timer = timer or StepTimer()
    dataset, shard, run_id, horizon = item["dataset"], item["shard"], item["run_id"], item["horizon"]
    with timer("read_features"):
        frame, manifest = load_shard_features(storage, item["manifest_key"])
    prefix = f"{settings.models_prefix}{dataset}/shard={shard:05d}/"
    extra = {
        "shard": shard,
        "shard_count": item["shard_count"],
        "data_end": manifest["date_range"][1],
        "known_in_advance": manifest.get("known_in_advance") or [],
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with timer("read_plan"):  # first: a refused plan (PlanError, one line) fails the shard before any training
        plan, planned = plan_file.shard_plan(storage, settings, item, manifest)
    bundle, model_key, backtest = trained_or_latest(storage, prefix, frame, manifest, horizon, item["mode"], timer, extra)
    with timer("forecast"):
        forecast = model.forecast(bundle, frame, horizon, plan=plan)
    first, last = forecast[schema.DATE].min().date(), forecast[schema.DATE].max().date()
    expiry = expires_at(last, today or datetime.now(UTC).date())
    with timer("write_items"):
        items_written = storage.put_items(prediction_items(forecast, bundle.metadata["version"], dataset, run_id, expiry))
    with timer("write_csv"):
        predictions_key = storage.write_csv(
            f"{settings.predictions_prefix}{dataset}/{run_id}/shard={shard:05d}.csv.gz", forecast, escape_formulas=True
        )
    trained = item["mode"] == "train_and_predict"
    with timer("report_slice"):
        meta = {"dataset": dataset, "shard": shard, "run_id": run_id, "backtested": trained}
        key = reporting.slice_key(dataset, run_id, shard)
        history = reporting.report_history(storage, settings, item, frame, manifest)
        slice_key = reporting.write_slice(storage, key, history, backtest, forecast, manifest["frequency"], meta)
    return {
        "dataset": dataset,
        "shard": shard,
        "shard_count": item["shard_count"],
        "run_id": run_id,
        "mode": item["mode"],
        "reason": item.get("reason"),
        "forecast_id": run_id,
        "model_version": bundle.metadata["version"],
        "model_key": model_key,
        "predictions_key": predictions_key,
        "predictions_written": len(forecast),  # forecast rows
        "items_written": items_written,  # DynamoDB items: one per series
        "series": int(forecast.groupby([schema.ITEM, schema.STORE]).ngroups),
        "rows": item.get("rows"),
        "horizon": horizon,
        "forecast_range": [first.isoformat(), last.isoformat()],
        "data_end": manifest["date_range"][1],
        "sums": bundle.metadata["metrics"].get("sums") if trained else None,
        "report_slice": slice_key,
        "plan": forecast.attrs["plan"],
        **planned,
    }
