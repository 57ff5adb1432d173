"""The Predictions shard step: train (with its backtest) or load the shard's latest model, forecast
its series, store them under the run's id.

Modes (decided per shard by the Plan step, see :mod:`.plan`):

* ``train_and_predict``: fit before the last ``horizon`` periods, backtest on them against
  seasonal naive and keep that model (the backtested model serves, see :func:`model.train`), save
  ``models/<dataset>/shard=<s:05d>/<version>/model.joblib`` and ``metadata.json``, then point that
  folder's ``latest.json`` at it (with the model's SHA-256), then forecast;
* ``predict``: forecast with the model the shard's ``latest.json`` points at, after checking its
  SHA-256 against latest.json (fails with a clear message when there is none yet or the bytes
  differ: nothing is unpickled that latest.json does not vouch for).

The forecast goes to DynamoDB under the run's id, one item per series (:func:`prediction_items`;
keys in :mod:`item_prediction.aws.table_keys`, with ``expires_at`` for TTL), and the CSV part beside
it; nothing is shown until the Aggregate step (:mod:`.aggregate`) writes the generation's pointers
and flips CURRENT, last: a failure before the flip leaves the previous forecast on display; the
superseded run's items expire.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from ..aws import series_item, table_keys
from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import features, schema
from ..ml import model
from . import plan_file
from . import report as reporting
from .envelope import NothingToDo


class ModelIntegrityError(ValueError):
    """The model's bytes are not the ones latest.json vouches for: never unpickled."""


def prediction_items(forecast: pd.DataFrame, version: str, dataset: str, forecast_id: str, expiry: int) -> list[dict]:
    """One DynamoDB item per series (``sk`` :data:`table_keys.SERIES_SK`) holding its whole forecast
    in date order as ONE string attribute (:func:`series_item.encode`: compact JSON of ``dates``,
    ``prediction`` and ``p10``/``p50``/``p90`` when the forecast has them, rounded to ``series_item.PLACES``),
    beside the ids, ``model_version`` and ``expires_at``.

    Vectorised: the frame is sorted once and cut where the series changes, one dict per series.
    Size: at most ``model.MAX_HORIZON`` = 366 periods. The largest item (366 periods with the
    quantiles, ids and dataset at their longest, every number at a double's longest text, 24
    characters) is about 44 KB, a ninth of DynamoDB's 400 KB item limit (about 15 KB with everyday
    values; a 14-day series under 1 KB, one write unit) (``tests/unit/steps/test_prediction_items.py``).
    """
    if forecast.empty:
        return []
    ordered = forecast.sort_values([schema.ITEM, schema.STORE, schema.DATE], kind="stable")
    items, stores = ordered[schema.ITEM].to_numpy(dtype=object), ordered[schema.STORE].to_numpy(dtype=object)
    starts = np.flatnonzero(features.series_starts(ordered)).tolist()
    ends = [*starts[1:], len(ordered)]
    days = ordered[schema.DATE].dt.strftime("%Y-%m-%d").tolist()
    names = [name for name in series_item.VALUES if name in ordered]
    columns = {name: np.round(ordered[name].to_numpy(dtype=float), series_item.PLACES).tolist() for name in names}
    return [
        {
            **table_keys.series_key(dataset, forecast_id, items[start], stores[start]),
            "item_id": items[start],
            "store_id": stores[start],
            "dataset": dataset,
            "forecast_id": forecast_id,
            "model_version": version,
            "expires_at": expiry,
            **series_item.encode(days[start:end], {name: values[start:end] for name, values in columns.items()}),
        }
        for start, end in zip(starts, ends, strict=True)
    ]


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
    latest = storage.get_json_if_any(latest_key)
    if latest is None:
        raise ValueError(f"mode 'predict' needs a trained model: {latest_key} does not exist; run 'train_and_predict' first")
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


def load_shard_features(storage: Storage, manifest_key: str, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """A shard's feature set (Parquet, exactly the version its FeatureEngineering wrote; ``columns``
    of it, else all) and manifest."""
    manifest = storage.get_json(manifest_key)
    frame = storage.read_parquet(manifest["features_key"], version_id=manifest.get("features_version"), columns=columns)
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    return frame, manifest


def window_prior(storage: Storage, manifest: dict) -> pd.DataFrame | None:
    """The prior a windowed feature set continues (``features.prior_table``: what each series had
    before its window), None for a feature set of the whole history."""
    return storage.read_parquet(manifest["prior_key"]) if manifest.get("since") and manifest.get("prior_key") else None


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
    # Forecasting alone reads the grid's base columns (``model.recursive_forecast`` computes the
    # features it needs): a predict run skips reading the others.
    columns = None if item["mode"] == "train_and_predict" else features.BASE_COLUMNS
    with timer("read_features"):
        frame, manifest = load_shard_features(storage, item["manifest_key"], columns)
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
    if item["mode"] == "train_and_predict" and manifest.get("inputs_only"):
        raise ValueError(
            f"{manifest['features_key']} holds a predict window's inputs, not features to train on: rebuild the shard"
        )
    bundle, model_key, backtest = trained_or_latest(storage, prefix, frame, manifest, horizon, item["mode"], timer, extra)
    with timer("forecast"):
        forecast = model.forecast(bundle, frame, horizon, plan=plan, prior=window_prior(storage, manifest))
    first, last = forecast[schema.DATE].min().date(), forecast[schema.DATE].max().date()
    expiry = table_keys.expires_at(last, today or datetime.now(UTC).date())
    with timer("write_items"):
        items_written = storage.put_items(prediction_items(forecast, bundle.metadata["version"], dataset, run_id, expiry))
    with timer("write_csv"):  # the numbers as the items hold them (and a third cheaper to format than in full)
        rounded = forecast.round(dict.fromkeys(series_item.VALUES, series_item.PLACES))
        predictions_key = storage.write_csv(
            f"{settings.predictions_prefix}{dataset}/{run_id}/shard={shard:05d}.csv.gz", rounded, escape_formulas=True
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
