"""Predictions: train a gradient-boosted model, backtest it honestly, forecast every series.

The backtest holds out the last ``horizon`` periods, trains on what came before and forecasts
the held-out periods the way production forecasts work: recursively, feeding each period's
prediction into the next period's lags. It is scored against a seasonal-naive baseline (the
value one season earlier: 7 days, or 52 weeks) with MAE and WAPE on the periods that had sales
records. The report says whether the model beats the baseline and by how much, including when
it does not.
"""

from __future__ import annotations

import io
import platform
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from . import features as feats
from . import schema

MODEL_PARAMS = {
    "loss": "poisson",  # counts: non-negative, variance growing with the mean
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": False,  # deterministic: the same data gives the same model
    "random_state": 0,
}


@dataclass
class ModelBundle:
    """What is saved with joblib: the estimator and everything needed to forecast with it."""

    estimator: HistGradientBoostingRegressor
    feature_names: list[str]
    frequency: str
    codes: dict
    metadata: dict

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def loads(data: bytes) -> "ModelBundle":
        return joblib.load(io.BytesIO(data))


def _offset(frequency: str, grid: pd.DataFrame) -> pd.DateOffset:
    return pd.tseries.frequencies.to_offset(feats.grid_freq(frequency, grid[schema.DATE]))


def fit(train: pd.DataFrame, names: list[str]) -> HistGradientBoostingRegressor:
    if train.empty:
        raise ValueError("no rows to train on")
    return HistGradientBoostingRegressor(**MODEL_PARAMS).fit(train[names], train[feats.TARGET])


def recursive_forecast(
    estimator, history: pd.DataFrame, horizon: int, frequency: str, codes: dict, names: list[str]
) -> pd.DataFrame:
    """Forecast ``horizon`` periods after each series' last period, feeding predictions back as lags."""
    offset = _offset(frequency, history)
    keep = feats.history_needed(frequency) + 1
    tail = history.sort_values([schema.ITEM, schema.STORE, schema.DATE]).groupby([schema.ITEM, schema.STORE]).tail(keep)
    last = tail.groupby([schema.ITEM, schema.STORE], as_index=False).agg({schema.DATE: "max", schema.PRICE: "last"})
    future = []
    for step in range(1, horizon + 1):
        rows = last.copy()
        rows[schema.DATE] = rows[schema.DATE] + step * offset
        rows["step"] = step
        future.append(rows)
    future = pd.concat(future, ignore_index=True)
    future[schema.QUANTITY] = np.nan
    future[schema.PROMOTION] = 0  # no promotion planned unless told otherwise
    future["is_gap"] = 0
    base_columns = [schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY, schema.PRICE, schema.PROMOTION, "is_gap"]
    work = pd.concat([tail[base_columns].assign(step=0), future[[*base_columns, "step"]]], ignore_index=True)
    for step in range(1, horizon + 1):
        frame = feats.compute_features(work.drop(columns="step"), frequency, codes)
        frame["step"] = work.sort_values([schema.ITEM, schema.STORE, schema.DATE])["step"].to_numpy()
        target = frame["step"].eq(step)
        predicted = np.clip(estimator.predict(frame.loc[target, names]), 0, None)
        keys = frame.loc[target, [schema.ITEM, schema.STORE, schema.DATE]].assign(prediction=predicted)
        work = work.merge(keys, on=[schema.ITEM, schema.STORE, schema.DATE], how="left")
        work[schema.QUANTITY] = work[schema.QUANTITY].fillna(work.pop("prediction"))
    result = work[work["step"] > 0][[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]]
    return result.rename(columns={schema.QUANTITY: "prediction"}).sort_values([schema.ITEM, schema.STORE, schema.DATE]).reset_index(drop=True)


def seasonal_naive(history: pd.DataFrame, dates: pd.DataFrame, frequency: str) -> pd.Series:
    """For each (item, store, date) in ``dates``: the quantity one season (or k seasons) before,
    taken from ``history`` only; the series' last value where its history is shorter than a season."""
    season = schema.SEASON_LENGTH[frequency]
    offset = _offset(frequency, history)
    lookup = history.set_index([schema.ITEM, schema.STORE, schema.DATE])[schema.QUANTITY]
    last_date = history.groupby([schema.ITEM, schema.STORE])[schema.DATE].max()
    last_value = history.sort_values(schema.DATE).groupby([schema.ITEM, schema.STORE])[schema.QUANTITY].last()
    values = []
    for item, store, when in dates[[schema.ITEM, schema.STORE, schema.DATE]].itertuples(index=False):
        end = last_date.get((item, store))
        value = np.nan
        if end is not None:
            back = when
            while back > end:  # step back whole seasons until inside the history
                back = back - season * offset
            value = lookup.get((item, store, back), np.nan)
            if np.isnan(value):
                value = last_value.get((item, store), np.nan)
        values.append(value)
    return pd.Series(values, index=dates.index, dtype=float)


def _scores(actual: pd.Series, predicted: pd.Series) -> dict:
    error = (actual - predicted).abs()
    total = actual.abs().sum()
    return {"mae": round(float(error.mean()), 6), "wape": round(float(error.sum() / total), 6) if total else None}


def backtest(feature_frame: pd.DataFrame, manifest: dict, horizon: int) -> dict:
    """Train on all but the last ``horizon`` periods, forecast them recursively, score against the baseline."""
    frequency = manifest["frequency"]
    names = manifest["features"]
    offset = _offset(frequency, feature_frame)
    cutoff = feature_frame[schema.DATE].max() - (horizon - 1) * offset
    train = feature_frame[feature_frame[schema.DATE] < cutoff]
    holdout = feature_frame[(feature_frame[schema.DATE] >= cutoff) & feature_frame["is_gap"].eq(0)]
    if train.empty or holdout.empty:
        raise ValueError(f"not enough history to backtest {horizon} periods")
    estimator = fit(train, names)
    forecast = recursive_forecast(estimator, train, horizon, frequency, manifest["codes"], names)
    scored = holdout[[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]].merge(forecast, on=[schema.DATE, schema.ITEM, schema.STORE], how="left")
    scored["prediction"] = scored["prediction"].fillna(0.0)
    scored["baseline"] = seasonal_naive(train, scored, frequency).fillna(0.0).to_numpy()
    model_scores = _scores(scored[schema.QUANTITY], scored["prediction"])
    baseline_scores = _scores(scored[schema.QUANTITY], scored["baseline"])
    improvement = 1 - model_scores["mae"] / baseline_scores["mae"] if baseline_scores["mae"] else None
    return {
        "horizon": horizon,
        "cutoff": cutoff.strftime("%Y-%m-%d"),
        "train_rows": len(train),
        "holdout_rows": len(scored),
        "model": model_scores,
        "seasonal_naive": baseline_scores,
        "mae_improvement": round(improvement, 4) if improvement is not None else None,
        "beats_baseline": bool(model_scores["mae"] < baseline_scores["mae"]),
    }


def train(feature_frame: pd.DataFrame, manifest: dict, horizon: int) -> ModelBundle:
    """Backtest, then fit on all periods; the bundle carries the backtest in its metadata."""
    metrics = backtest(feature_frame, manifest, horizon)
    estimator = fit(feature_frame, manifest["features"])
    metadata = {
        "version": model_version(manifest),
        "features": manifest["features"],
        "frequency": manifest["frequency"],
        "params": MODEL_PARAMS,
        "metrics": metrics,
        "training_rows": len(feature_frame),
        "training_fingerprint": manifest["source_fingerprint"],
        "features_version": manifest["version"],
        "libraries": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__, "joblib": joblib.__version__},
        "python": platform.python_version(),
    }
    return ModelBundle(estimator, list(manifest["features"]), manifest["frequency"], manifest["codes"], metadata)


def model_version(manifest: dict) -> str:
    """Named by what it learned from: the same data and features give the same version (re-runs overwrite)."""
    return f"{manifest['source_fingerprint'][:16]}-f{manifest['version']}"


def forecast(bundle: ModelBundle, feature_frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Predict ``horizon`` periods after the last one, for every series."""
    return recursive_forecast(bundle.estimator, feature_frame, horizon, bundle.frequency, bundle.codes, bundle.feature_names)
