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


def prior_key(settings: Settings, item: dict, data_end: str) -> str:
    """``features/<ds>/shard=<s:05d>/prior/n=<N>/<data_end>.parquet``: the shard's history before
    the window of a model trained up to ``data_end`` (fixed for that model, so keyed by it)."""
    return (
        f"{settings.features_prefix}{item['dataset']}/shard={item['shard']:05d}/prior/n={item['shard_count']}/{data_end}.parquet"
    )


def read_prior(storage: Storage, settings: Settings, item: dict) -> pd.DataFrame | None:
    """The stored prior of the shard's model (``item["data_end"]``), or None when there is none
    (a model trained before priors were stored: the shard then reads its whole history once)."""
    try:  # one GET, no HEAD first: a missing prior is the rare case
        return storage.read_parquet(prior_key(settings, item, item["data_end"]))
    except storage.s3.exceptions.NoSuchKey:
        return None


def _load_for(
    storage: Storage, settings: Settings, item: dict, timer: StepTimer
) -> tuple[pd.DataFrame, list, dict, pd.DataFrame | None]:
    """The shard's rows for its mode, and the prior they continue (None: the whole history).

    To train: every row. To predict: each series' rows from its cut in the model's stored prior
    (the window: ``window_start`` of the model's data end, earlier for a series that ended
    sooner, so every series the full history has is forecast; a series new since the model, from
    the window's start), switching to training when the new data runs past the model's by more
    than the horizon. Without a stored prior, predicting reads the whole history. Parts whose rows
    all end before the window (``item["part_ends"]``, from the Plan) are not read.
    """
    dataset, count, shard = item["dataset"], item["shard_count"], item["shard"]
    decided = {"mode": item["mode"], "reason": item.get("reason"), "since": None}
    prior, cuts = None, None
    if item["mode"] == "predict" and item.get("data_end"):
        with timer("read_prior"):
            prior = read_prior(storage, settings, item)
        if prior is not None:
            decided["since"] = window_start(item["data_end"], item["frequency"])
            cuts = prior.set_index([schema.ITEM, schema.STORE])["cut"].dt.strftime("%Y-%m-%d")
    with timer("read_validated"):
        clean, inputs = shard_store.load_shard(
            storage, settings, dataset, count, shard, since=decided["since"], cuts=cuts, ends=item.get("part_ends")
        )
    if (
        item["mode"] == "predict"
        and item.get("data_end")
        and len(clean)
        and retrain_due(item["data_end"], str(clean[schema.DATE].max()), item["horizon"], item["frequency"])
    ):
        decided = {
            "mode": "train_and_predict",
            "reason": f"new data more than {item['horizon']} periods after the model's",
            "since": None,
        }
        prior = None
        if cuts is not None:
            with timer("read_validated"):
                clean, inputs = shard_store.load_shard(storage, settings, dataset, count, shard)
    if clean.empty:
        raise NothingToDo(f"shard {shard} of {count} has no validated rows")
    return clean, inputs, decided, prior


def store_prior(storage: Storage, settings: Settings, item: dict, frame: pd.DataFrame, data_end: str) -> str:
    """Write the prior of a model trained up to ``data_end`` from a full-history feature set."""
    key = prior_key(settings, item, data_end)
    storage.put_parquet(key, features.prior_table(frame, window_start(data_end, item["frequency"]), item["frequency"]))
    return key


def build_shard(storage: Storage, settings: Settings, item: dict, *, timer: StepTimer | None = None) -> dict:
    """Build one shard's feature set (``features/<ds>/shard=<s:05d>/features.parquet`` and its
    manifest) from the shard's validated parts; NothingToDo when the shard has no rows.

    A predict run's window holds only what the forecast reads (``features.build_features``'s
    ``inputs_only``: the grid's base columns). Built on the whole history, it also stores the
    prior (:func:`prior_key`) of the model that will forecast from it: the one trained on it
    (train mode), or the shard's latest (predict mode without a prior yet), so the next
    predict-mode runs read only their window.
    Returns the shard item with the features' keys, counts and the mode finally decided.
    """
    timer = timer or StepTimer()
    clean, inputs, decided, prior = _load_for(storage, settings, item, timer)
    with timer("build_features"):
        known = item.get("known_in_advance") or ()
        window = decided["mode"] == "predict" and prior is not None  # a forecast's inputs: it computes its features
        frame, manifest = features.build_features(
            clean, item["frequency"], known_in_advance=known, prior=prior, inputs_only=window
        )
    prefix = f"{settings.features_prefix}{item['dataset']}/shard={item['shard']:05d}/"
    with timer("write_features"):
        features_version = storage.put_parquet(prefix + "features.parquet", frame, dictionary=tuple(features.SERIES))
        model_end = manifest["date_range"][1] if decided["mode"] == "train_and_predict" else item.get("data_end")
        if prior is None and model_end:  # the whole history: the prior of the model that forecasts from it
            prior_written = store_prior(storage, settings, item, frame, model_end)
        else:
            prior_written = prior_key(settings, item, model_end) if model_end else None
        manifest_key = storage.put_json(
            prefix + "manifest.json",
            {
                **manifest,
                "features_key": prefix + "features.parquet",
                "features_version": features_version,
                "shard": item["shard"],
                "shard_count": item["shard_count"],
                "since": decided["since"],
                "prior_key": prior_written,
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
