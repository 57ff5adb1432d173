"""The FeatureEngineering shard step: one shard's feature set from its validated parts (the rows
of a predict run's recent window only, unless retraining turns out to be due)."""

from __future__ import annotations

import pandas as pd

from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import features, schema
from . import shard_store
from .envelope import NothingToDo


def periods(count: int, frequency: str) -> pd.DateOffset:
    """``count`` periods of ``frequency`` as a calendar offset (months are not a fixed number of days)."""
    return pd.DateOffset(months=count) if frequency == "M" else pd.DateOffset(days=count * (7 if frequency == "W" else 1))


def window_start(data_end: str, frequency: str) -> str:
    """The first day a forecast from a model trained up to ``data_end`` needs: the periods the
    history features look back on (``features.history_needed``), before that end."""
    return (pd.Timestamp(data_end) - periods(features.history_needed(frequency), frequency)).strftime("%Y-%m-%d")


def retrain_due(data_end: str, last_day: str, horizon: int, frequency: str) -> bool:
    """The new data reaches more than ``horizon`` periods past the model's data: the model is stale."""
    return pd.Timestamp(last_day) > pd.Timestamp(data_end) + periods(horizon, frequency)


def _load_for(storage: Storage, settings: Settings, item: dict, timer: StepTimer) -> tuple[pd.DataFrame, list, dict]:
    """The shard's rows for its mode: all of them to train; to predict, the recent window only
    (switching to training when the new data runs past the model's by more than the horizon)."""
    dataset, count, shard = item["dataset"], item["shard_count"], item["shard"]
    decided = {"mode": item["mode"], "reason": item.get("reason"), "since": None}
    if item["mode"] == "predict" and item.get("data_end"):
        decided["since"] = window_start(item["data_end"], item["frequency"])
    with timer("read_validated"):
        clean, inputs = shard_store.load_shard(storage, settings, dataset, count, shard, since=decided["since"])
    if (
        decided["since"]
        and len(clean)
        and retrain_due(item["data_end"], str(clean[schema.DATE].max()), item["horizon"], item["frequency"])
    ):
        decided = {
            "mode": "train_and_predict",
            "reason": f"new data more than {item['horizon']} periods after the model's",
            "since": None,
        }
        with timer("read_validated"):
            clean, inputs = shard_store.load_shard(storage, settings, dataset, count, shard)
    if clean.empty:
        raise NothingToDo(f"shard {shard} of {count} has no validated rows")
    return clean, inputs, decided


def build_shard(storage: Storage, settings: Settings, item: dict, *, timer: StepTimer | None = None) -> dict:
    """Build one shard's feature set (``features/<ds>/shard=<s:05d>/features.parquet`` and its
    manifest) from the shard's validated parts; NothingToDo when the shard has no rows.
    Returns the shard item with the features' keys, counts and the mode finally decided."""
    timer = timer or StepTimer()
    clean, inputs, decided = _load_for(storage, settings, item, timer)
    with timer("build_features"):
        frame, manifest = features.build_features(clean, item["frequency"], known_in_advance=item.get("known_in_advance") or ())
    prefix = f"{settings.features_prefix}{item['dataset']}/shard={item['shard']:05d}/"
    with timer("write_features"):
        features_version = storage.put_parquet(prefix + "features.parquet", frame)
        manifest_key = storage.put_json(
            prefix + "manifest.json",
            {
                **manifest,
                "features_key": prefix + "features.parquet",
                "features_version": features_version,
                "shard": item["shard"],
                "shard_count": item["shard_count"],
                "since": decided["since"],
                "inputs": inputs,
            },
        )
    return {
        **item,
        **decided,
        "features_key": prefix + "features.parquet",
        "features_version": features_version,
        "manifest_key": manifest_key,
        "input_count": len(inputs),
        "rows": manifest["rows"],
        "series": manifest["series"],
        "date_range": manifest["date_range"],
    }
