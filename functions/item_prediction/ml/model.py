"""Predictions: train a gradient-boosted model, backtest it honestly, forecast every series.

The backtest holds out the last ``horizon`` periods of the dataset, trains on what came before
and forecasts the held-out periods the way production forecasts work: recursively, each
period's predictions becoming the next period's lags, with no actual value from the holdout ever
seen. It is scored against a seasonal-naive baseline (the value one season earlier: 7 days or
52 weeks, stepping back whole seasons into the training history; the series' last value when
its history is shorter than a season) with MAE and WAPE on the held-out periods that had a sales
record. The result says whether the model beats the baseline and by how much, also when it
does not: ``beats_baseline`` and ``mae_improvement`` are computed from the two MAEs reported
next to them.

Features that carry no information in a fit's training rows (all missing, such as the price
features of an export without prices or a 52-week lag on less than a year; or one value on every
row) are left out of that fit: scikit-learn cannot bin an all-missing column, and a constant one
can never be split on. Each fit decides from its own rows, and the bundle keeps the names it was
fitted on, which are exactly the ones forecasting feeds it.

This module imports scikit-learn: only the Predictions function (with the ml-libraries layer)
imports it.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from ..domain import features as feats
from ..domain import schema

MODEL_PARAMS = {
    "loss": "poisson",  # counts: non-negative, variance growing with the mean
    "learning_rate": 0.08,
    "max_iter": 250,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,  # deterministic: the same data gives the same model
    "random_state": 0,
}
MIN_TRAIN_ROWS = 50
MAX_HORIZON = 366


class InsufficientHistory(ValueError):
    """Too little data to train and backtest: a fact about the dataset, not a failure."""


@dataclass(frozen=True)
class Fitted:
    """An estimator and the features it was fitted on (in order), with why others were left out."""

    estimator: HistGradientBoostingRegressor
    names: list[str]
    dropped: dict[str, str]


@dataclass
class ModelBundle:
    """What is saved with joblib: the estimator and everything needed to forecast with it."""

    estimator: HistGradientBoostingRegressor
    feature_names: list[str]  # the fitted ones: what forecasting feeds the estimator
    frequency: str
    codes: dict
    metadata: dict

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def loads(data: bytes) -> ModelBundle:
        return joblib.load(io.BytesIO(data))


def check_horizon(horizon) -> int:
    """A horizon from configuration or an event, as a positive int, or a clear ValueError."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | str):
        raise ValueError(f"horizon must be a whole number of periods, got {horizon!r}")
    try:
        value = int(horizon)
    except ValueError:
        raise ValueError(f"horizon must be a whole number of periods, got {horizon!r}") from None
    if not 1 <= value <= MAX_HORIZON:
        raise ValueError(f"horizon must be between 1 and {MAX_HORIZON} periods, got {value}")
    return value


def _step(frequency: str, frame: pd.DataFrame) -> pd.DateOffset:
    return pd.tseries.frequencies.to_offset(feats.grid_freq(frequency, frame[schema.DATE]))


def informative_features(train: pd.DataFrame, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """(the features of ``names`` that carry information in ``train``, {left-out feature: why}).

    Left out: ``all missing`` (nothing to bin) and ``constant`` (one value on every row: no split).
    A feature with one value and some missing rows stays: whether it is missing can be split on.
    """
    values = train[names]
    present, low, high = values.count(), values.min(), values.max()
    dropped = {}
    for name in names:
        if present[name] == 0:
            dropped[name] = "all missing"
        elif present[name] == len(values) and low[name] == high[name]:
            dropped[name] = "constant"
    return [name for name in names if name not in dropped], dropped


def fit(train: pd.DataFrame, names: list[str]) -> Fitted:
    """Fit on ``train``'s informative features; InsufficientHistory when there is nothing to learn."""
    if len(train) < MIN_TRAIN_ROWS:
        raise InsufficientHistory(f"{len(train)} rows to train on; at least {MIN_TRAIN_ROWS} are needed")
    if not train[feats.TARGET].gt(0).any():  # the Poisson loss needs some sales
        raise InsufficientHistory(f"nothing was sold in the {len(train)} rows to train on")
    used, dropped = informative_features(train, names)
    if not used:
        raise InsufficientHistory(f"no feature varies in the {len(train)} rows to train on")
    estimator = HistGradientBoostingRegressor(**MODEL_PARAMS).fit(train[used], train[feats.TARGET])
    return Fitted(estimator, used, dropped)


def recursive_forecast(
    estimator,
    history: pd.DataFrame,
    horizon: int,
    frequency: str,
    codes: dict,
    names: list[str],
    *,
    return_features: bool = False,
) -> pd.DataFrame:
    """Forecast ``horizon`` periods after each series' last period, feeding predictions back as lags.

    Known-in-advance features of the future periods (calendar, price, promotion, encodings) are
    computed once over each series' whole history, so price references match training. History
    features are recomputed each step on a tail of each series (as long as the features look
    back) plus the running totals of the periods before the tail: the same values as a
    recomputation over the whole history, at a fraction of the cost. The future keeps each
    series' last price and no promotion.
    """
    offset = _step(frequency, history)
    base = feats.sort_grid(history[feats.BASE_COLUMNS])
    last = base.groupby(feats.SERIES, sort=False).agg({schema.DATE: "max", schema.PRICE: "last"}).reset_index()
    future = pd.concat(
        [last.assign(**{schema.DATE: last[schema.DATE] + step * offset, "step": step}) for step in range(1, horizon + 1)],
        ignore_index=True,
    )
    future[schema.QUANTITY] = np.nan
    future[schema.PROMOTION] = 0
    future["is_gap"] = 0
    future = future[[*feats.BASE_COLUMNS, "step"]]

    known_names = [name for name in names if name not in feats.history_feature_names(frequency)]
    everything = feats.sort_grid(pd.concat([base.assign(step=0), future], ignore_index=True))
    known = feats.known_in_advance(everything, frequency, codes)
    known = known.loc[known["step"] > 0, [*feats.KEY_COLUMNS, *known_names]]

    position = base.groupby(feats.SERIES, sort=False).cumcount(ascending=False)
    in_tail = position < feats.history_needed(frequency)
    prior = feats.running_totals(base[~in_tail])
    work = feats.sort_grid(pd.concat([base[in_tail].assign(step=0), future], ignore_index=True))
    used = []
    for step in range(1, horizon + 1):
        frame = feats.add_history(work.copy(), frequency, prior)
        rows = frame.loc[frame["step"] == step, [*feats.KEY_COLUMNS, *feats.history_feature_names(frequency)]]
        rows = rows.merge(known, on=list(feats.KEY_COLUMNS), how="left", validate="one_to_one")
        predicted = np.clip(estimator.predict(rows[names]), 0, None)
        work.loc[work["step"] == step, schema.QUANTITY] = predicted  # same order: both sorted by series
        if return_features:
            used.append(rows.assign(prediction=predicted))
    result = work.loc[work["step"] > 0, [schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]]
    result = result.rename(columns={schema.QUANTITY: "prediction"}).reset_index(drop=True)
    if return_features:
        return result, pd.concat(used, ignore_index=True)
    return result


def seasonal_naive(history: pd.DataFrame, targets: pd.DataFrame, frequency: str) -> pd.Series:
    """For each (item, store, date) of ``targets``: the quantity a whole number of seasons
    earlier, the latest such period inside the series' ``history``; the series' last value where
    that period is missing (history shorter than a season); NaN for unknown series."""
    season = schema.SEASON_LENGTH[frequency]
    period_days = 1 if frequency == "D" else 7
    ends = history.groupby(feats.SERIES)[schema.DATE].max().rename("end")
    last_values = history.sort_values(schema.DATE).groupby(feats.SERIES)[schema.QUANTITY].last().rename("last_value")
    frame = targets[[schema.ITEM, schema.STORE, schema.DATE]].join(ends, on=feats.SERIES).join(last_values, on=feats.SERIES)
    ahead = ((frame[schema.DATE] - frame["end"]).dt.days // period_days).clip(lower=1)
    seasons_back = np.ceil(ahead / season)
    frame["back"] = frame[schema.DATE] - pd.to_timedelta(seasons_back * season * period_days, unit="D")
    lookup = history[[schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]].rename(
        columns={schema.DATE: "back", schema.QUANTITY: "seasonal"}
    )
    frame = frame.merge(lookup, on=[schema.ITEM, schema.STORE, "back"], how="left")
    return pd.Series(frame["seasonal"].fillna(frame["last_value"]).to_numpy(), index=targets.index, dtype="float64")


def scores(actual: pd.Series, predicted: pd.Series) -> dict:
    """MAE and WAPE (sum of absolute errors over sum of actuals; None when nothing was sold)."""
    error = (actual - predicted).abs()
    total = actual.abs().sum()
    return {"mae": round(float(error.mean()), 6), "wape": round(float(error.sum() / total), 6) if total else None}


def backtest(feature_frame: pd.DataFrame, manifest: dict, horizon: int, *, return_rows: bool = False):
    """Train on all but the last ``horizon`` periods, forecast them recursively, score against the baseline.

    ``return_rows``: (scores, the scored rows: item, store, date, actual, prediction, naive) for the report."""
    frequency = manifest["frequency"]
    names = manifest["features"]
    offset = _step(frequency, feature_frame)
    cutoff = feature_frame[schema.DATE].max() - (horizon - 1) * offset
    train = feature_frame[feature_frame[schema.DATE] < cutoff]
    holdout = feature_frame[(feature_frame[schema.DATE] >= cutoff) & feature_frame["is_gap"].eq(0)]
    if holdout.empty:
        raise InsufficientHistory(f"no sales records in the last {horizon} periods to backtest on")
    fitted = fit(train, names)
    forecast = recursive_forecast(fitted.estimator, train, horizon, frequency, manifest["codes"], fitted.names)
    scored = holdout[[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]].merge(
        forecast, on=list(feats.KEY_COLUMNS), how="left"
    )
    # A series that starts inside the holdout has no forecast and no baseline: both say 0.
    scored["prediction"] = scored["prediction"].fillna(0.0)
    scored["baseline"] = seasonal_naive(train, scored, frequency).fillna(0.0).to_numpy()
    model_scores = scores(scored[schema.QUANTITY], scored["prediction"])
    baseline_scores = scores(scored[schema.QUANTITY], scored["baseline"])
    improvement = 1 - model_scores["mae"] / baseline_scores["mae"] if baseline_scores["mae"] else None
    result = {
        "horizon": horizon,
        "cutoff": cutoff.strftime("%Y-%m-%d"),
        "train_rows": len(train),
        "holdout_rows": len(scored),
        "series": int(scored.groupby(feats.SERIES).ngroups),
        "model": model_scores,
        "seasonal_naive": baseline_scores,
        "season_length": schema.SEASON_LENGTH[frequency],
        "mae_improvement": round(improvement, 4) if improvement is not None else None,
        "mae_ratio": round(model_scores["mae"] / baseline_scores["mae"], 4) if baseline_scores["mae"] else None,
        "beats_baseline": bool(model_scores["mae"] < baseline_scores["mae"]),
        "features_dropped": fitted.dropped,
        # Additive totals: shards' backtests combine into exact dataset MAE and WAPE (steps.aggregate).
        "sums": {
            "abs_error": float((scored[schema.QUANTITY] - scored["prediction"]).abs().sum()),
            "naive_abs_error": float((scored[schema.QUANTITY] - scored["baseline"]).abs().sum()),
            "actual": float(scored[schema.QUANTITY].abs().sum()),
            "count": len(scored),
        },
    }
    if return_rows:
        return result, scored.rename(columns={schema.QUANTITY: "actual", "baseline": "naive"})
    return result


def model_version(manifest: dict) -> str:
    """Named by what it learned from and how: the same data, features, parameters and library
    give the same version (a re-run overwrites), anything else a new one."""
    recipe = json.dumps(
        {
            "params": MODEL_PARAMS,
            "features": manifest["features"],
            "features_version": manifest["version"],
            "sklearn": sklearn.__version__,
        },
        sort_keys=True,
    )
    return f"{manifest['source_fingerprint'][:16]}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def train(feature_frame: pd.DataFrame, manifest: dict, horizon: int) -> ModelBundle:
    """Backtest, then fit on all periods; the bundle carries the backtest in its metadata."""
    metrics = backtest(feature_frame, manifest, horizon)
    return make_bundle(fit(feature_frame, manifest["features"]), feature_frame, manifest, metrics)


def make_bundle(fitted: Fitted, feature_frame: pd.DataFrame, manifest: dict, metrics: dict) -> ModelBundle:
    """The model fitted on all of ``feature_frame`` with its metadata (``metrics``: its backtest).
    :func:`train` in one call; the Predictions step calls the parts, to time each."""
    metadata = {
        "version": model_version(manifest),
        "features": manifest["features"],
        "features_used": fitted.names,
        "features_dropped": fitted.dropped,
        "frequency": manifest["frequency"],
        "params": MODEL_PARAMS,
        "metrics": metrics,
        "training_rows": len(feature_frame),
        "training_date_range": manifest.get("date_range"),
        "training_fingerprint": manifest["source_fingerprint"],
        "features_version": manifest["version"],
        "libraries": {
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
        "python": platform.python_version(),
    }
    return ModelBundle(fitted.estimator, list(fitted.names), manifest["frequency"], manifest["codes"], metadata)


def forecast(bundle: ModelBundle, feature_frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Predict ``horizon`` periods after each series' last period, for every series."""
    return recursive_forecast(bundle.estimator, feature_frame, horizon, bundle.frequency, bundle.codes, bundle.feature_names)
