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
import pickle
import platform
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.stats import _weighted_percentile

from ..domain import features as feats
from ..domain import plan as plan_names
from ..domain import schema

# learning_rate and max_iter: 0.15 x 100 matched 0.08 x 250 on the accuracy benchmark at 40% of
# the fit's time (docs/scaling.md, "Training cost"); a fit's time is rows x features x iterations.
MODEL_PARAMS = {
    "loss": "poisson",  # counts: non-negative, variance growing with the mean
    "learning_rate": 0.15,
    "max_iter": 100,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,  # deterministic: the same data gives the same model
    "random_state": 0,
}
MIN_TRAIN_ROWS = 50
MAX_HORIZON = 366

# Most rows of a retail training set sold nothing (61% of M5-shaped daily rows), and a fit costs
# rows x features x iterations. So a training set of more than ZERO_SAMPLE_FROM rows fits on every
# row that sold and a draw of ZERO_SAMPLE_RATE of the others, each kept zero weighted by
# 1 / ZERO_SAMPLE_RATE: the weighted deviance is the whole set's in expectation. At 1 M and 3 M
# M5-shaped rows that fit took 0.68x the time for a backtest MAE no worse (0.9116 vs 0.9196,
# 0.9199 vs 0.9208; a third or a quarter of the zeros scored worse at 3 M); smaller sets, where a
# fit is cheap and a draw would be noisy, keep every row (scripts/bench_model_scope.py).
ZERO_SAMPLE_FROM = 200_000
ZERO_SAMPLE_RATE = 0.5
TRAINING_ROWS = "every row with a level: a series' first period is left out"  # see training_rows
# A daily training set of more than ZERO_SAMPLE_FROM rows fits on its last RECENT_MONTHS months (its
# features still look back over the whole history). On M5-shaped data at 1 M and 3 M rows that fit
# took about 0.6x the time for a backtest MAE no worse (0.9154 vs 0.9165, 0.9186 vs 0.9207), and
# was no worse on a 400-series generated daily export; weekly and monthly sets (7 and 30 times fewer
# periods a year: their older years are much of what they know of the season) lost 0.6-1.7% with it,
# so they keep every period (scripts/bench_model_scope.py prints both ways).
RECENT_MONTHS = {"D": 18}


LEVEL_FLOOR = 0.1  # the smallest level quantities are divided by (a series that sold nothing lately)
SCALED_PREFIXES = ("lag_", "rolling_mean_", "rolling_std_", "series_mean_to_date")


class LevelScaled:
    """Gradient boosting on quantities relative to each row's own recent level.

    The level of a row is its series' shortest rolling mean (else the running mean; at least
    LEVEL_FLOOR): the recent level, which the benchmark preferred to the longest window. Lags,
    rolling statistics, the running mean and the target are divided by it and the log of the
    level is a feature, so one tree learns shapes shared by series of any volume,
    and a trend continues (a ratio to the recent level, where raw quantities would be capped at
    the largest value seen in training). Rows are weighted by their level: with the Poisson loss,
    the weighted deviance of the scaled target equals the deviance of the raw one, so the fit
    still minimises the error in units sold.
    """

    def __init__(self, names: list[str], **params) -> None:
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.scaled = [name for name in names if name.startswith(SCALED_PREFIXES)]
        self.level_from = [name for name in names if name.startswith("rolling_mean_")][:1] + (
            ["series_mean_to_date"] if "series_mean_to_date" in names else []
        )
        self.estimator = HistGradientBoostingRegressor(**params)

    def has_level(self, X) -> np.ndarray:
        """Whether each row has a level of its own (any of ``level_from``): every row but a
        series' first, which has no history. Without features to take one from: every row."""
        if not self.level_from:
            return np.ones(len(X), dtype=bool)
        return np.logical_or.reduce([X[name].notna().to_numpy() for name in self.level_from])

    def _level(self, X) -> np.ndarray:
        """Each row's level: the first of ``level_from`` it has, else 1.0; at least LEVEL_FLOOR.
        ``X``: a frame, or {name: array} (the recursive forecast's one step)."""
        level = None
        for name in self.level_from:
            values = np.asarray(X[name], dtype="float64")
            level = values if level is None else np.where(np.isnan(level), values, level)
        if level is None:
            return np.ones(len(X[self.feature_names_in_[0]]))
        return np.maximum(np.where(np.isnan(level), 1.0, level), LEVEL_FLOOR)

    def _matrix(self, X, level: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """What the estimator learns from, fit and predict alike: the scaled features divided by
        the level, the others as they are, then ``log_level``; one float64 block (scikit-learn
        converts every column to float64 anyway). ``X``: a frame, or {name: array} (the recursive
        forecast predicts a few hundred rows per step, where building a frame of them cost as much
        as the trees). ``rows``: a mask of the rows of ``X`` to take (``level`` is theirs), else all."""
        names, scaled = self._input_names(), set(self.scaled)
        matrix = np.empty((len(level), len(names)))
        for position, name in enumerate(names):
            values = np.log(level) if name == "log_level" else np.asarray(X[name], dtype="float64")
            if rows is not None and name != "log_level":
                values = values[rows]
            matrix[:, position] = values / level if name in scaled else values
        return matrix

    def _input_names(self) -> list[str]:
        return [*self.feature_names_in_, "log_level"]

    def _inputs(self, X, level: np.ndarray) -> pd.DataFrame:
        """:meth:`_matrix` as a frame of named columns (a block pandas and scikit-learn read without a copy)."""
        return pd.DataFrame(self._matrix(X, level), columns=self._input_names(), index=getattr(X, "index", None), copy=False)

    def fit(
        self, X: pd.DataFrame, y: pd.Series, *, rows: np.ndarray | None = None, weight: np.ndarray | None = None
    ) -> LevelScaled:
        """Fitted on the block scikit-learn would make of the inputs' frame (the same trees), without
        its column names: this class builds the block from its own names, and scikit-learn then
        skips its per-call checks of a frame's names and dtypes when predicting (a quarter of the
        time of a forecast step's predict: ~0.35 ms of ~1.5 ms on a 3 M shard's 390 series).
        ``rows`` and ``weight`` (:func:`zero_sample`): fit on those rows only, their level's weight
        multiplied by ``weight``; the block holds only them."""
        level, target = self._level(X), y.to_numpy(dtype="float64")
        if rows is not None:
            level, target = level[rows], target[rows]
        matrix = self._matrix(X, level, rows)  # one block: the edges are read from it, then it is binned in place
        weight = level if weight is None else level * weight
        binning = len(matrix) <= BINNING_SUBSAMPLE
        self.bins_ = weighted_bins(pd.DataFrame(matrix, columns=self._input_names(), copy=False), weight) if binning else {}
        self.estimator.fit(self._binned(matrix), target / level, sample_weight=weight)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted quantities of the rows of ``X`` (a frame, or {feature name: array})."""
        level = self._level(X)
        matrix = self._binned(self._matrix(X, level))
        if hasattr(self.estimator, "feature_names_in_"):  # fitted on a frame (saved before): is fed one
            matrix = pd.DataFrame(matrix, columns=self._input_names(), copy=False)
        return self.estimator.predict(matrix) * level

    def _binned(self, matrix: np.ndarray) -> np.ndarray:
        """``matrix`` (of :meth:`_input_names`) with each binned column's values replaced, in place,
        by their bin's number (bin i holds edges[i-1] < x <= edges[i], as scikit-learn maps them;
        missing values stay missing): fit and predict alike. A bundle from before ``bins_``: none."""
        names = self._input_names()
        for name, edges in getattr(self, "bins_", {}).items():
            column = matrix[:, names.index(name)]
            matrix[:, names.index(name)] = np.where(np.isnan(column), np.nan, np.searchsorted(edges, column, side="left"))
        return matrix


# scikit-learn's binner (1.9) computes a weighted fit's bin edges one percentile at a time, sorting
# the column again for each of the 254: at or under its 200,000-row subsample that is 2.7 s of a
# 100,000-row fit's 3.0 s (scikit-learn issue #34304; fixed upstream after 1.9.1). Above it, HGB
# draws rows by weight and bins without weights, which is fast. So for at most that many rows the
# edges are computed here with the same function, all percentiles in one call (identical edges),
# and each value is replaced by its bin's number: HGB then sees at most 255 distinct values per
# column, which it bins as they are, and builds the same trees.
BINNING_SUBSAMPLE = 200_000  # sklearn's _BinMapper subsample
MAX_BINS = 255  # HistGradientBoostingRegressor's default max_bins
_PERCENTILES = np.linspace(0, 100, MAX_BINS + 1)[1:-1]


def _edges(column: np.ndarray, weight: np.ndarray) -> np.ndarray | None:
    """The column's bin edges as scikit-learn's weighted binning computes them (missing values and
    zero weights left out); None when it has at most MAX_BINS distinct values (HGB bins those fast)."""
    kept = ~np.isnan(column) & (weight != 0)
    order = np.argsort(column[kept])
    values, weights = column[kept][order], weight[kept][order]
    if len(np.unique(values)) <= MAX_BINS:
        return None
    edges = np.unique(_weighted_percentile(values, weights, _PERCENTILES, average=True))
    return np.clip(edges, None, np.finfo(np.float64).max)


def weighted_bins(inputs: pd.DataFrame, weight: np.ndarray) -> dict[str, np.ndarray]:
    """{column: bin edges} of the columns with more than MAX_BINS distinct values."""
    edges = {name: _edges(inputs[name].to_numpy(dtype="float64"), weight) for name in inputs.columns}
    return {name: value for name, value in edges.items() if value is not None}


class InsufficientHistory(ValueError):
    """Too little data to train and backtest: a fact about the dataset, not a failure."""


@dataclass(frozen=True)
class Fitted:
    """An estimator and the features it was fitted on (in order), with why others were left out."""

    estimator: LevelScaled
    names: list[str]
    dropped: dict[str, str]


# A saved bundle is the plain pickle (protocol 5) of the bundle: the C unpickler reads a 3 M
# shard's in ~0.6 ms where joblib's pure-Python one took ~6 ms for its compressed file, and
# ``joblib.load`` still reads it (a plain pickle is a joblib file), so ``model.joblib`` stays what
# its name says for whoever loads it by hand. 214 KB instead of 96 KB compressed: one GET either way.
PICKLE_5 = b"\x80\x05"  # the first bytes of a protocol-5 pickle; joblib's compressed files start otherwise


@dataclass
class ModelBundle:
    """What is saved: the estimator and everything needed to forecast with it."""

    estimator: LevelScaled
    feature_names: list[str]  # the fitted ones: what forecasting feeds the estimator
    frequency: str
    codes: dict
    metadata: dict

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=5)

    @staticmethod
    def loads(data: bytes) -> ModelBundle:
        """A bundle saved by :meth:`dumps`, or by the joblib.dump (compress=3) that saved them before."""
        if data.startswith(PICKLE_5):
            return pickle.loads(data)
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


def zero_sample(target: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the rows a fit keeps, as a mask, and their weights), or (None, None): every row, unweighted.

    At most ZERO_SAMPLE_FROM rows: every row. More: every row with a quantity other than zero, and
    a draw of ZERO_SAMPLE_RATE of the zeros weighted by its inverse. The draw is fixed by the rows'
    order (seed 0), so the same training set gives the same sample, hence the same model.
    """
    if len(target) <= ZERO_SAMPLE_FROM:
        return None, None
    sold = target != 0
    rows = sold | (np.random.default_rng(0).random(len(target)) < ZERO_SAMPLE_RATE)
    return rows, np.where(sold[rows], 1.0, 1.0 / ZERO_SAMPLE_RATE)


def fit(train: pd.DataFrame, names: list[str], frequency: str | None = None) -> Fitted:
    """Fit on ``train``'s informative features, on the rows :func:`training_rows` keeps (those with
    a level; of a large daily set, the recent ones; of many, a :func:`zero_sample`);
    InsufficientHistory when there is nothing to learn."""
    if len(train) < MIN_TRAIN_ROWS:
        raise InsufficientHistory(f"{len(train)} rows to train on; at least {MIN_TRAIN_ROWS} are needed")
    used, dropped = informative_features(train, names)
    if not used:
        raise InsufficientHistory(f"no feature varies in the {len(train)} rows to train on")
    estimator = LevelScaled(used, **MODEL_PARAMS)
    rows, weight = training_rows(estimator, train, frequency)
    kept = train[feats.TARGET].to_numpy(dtype="float64")[rows]
    if len(kept) < MIN_TRAIN_ROWS:
        raise InsufficientHistory(f"{len(kept)} rows with history to train on; at least {MIN_TRAIN_ROWS} are needed")
    if not (kept > 0).any():  # the Poisson loss needs some sales
        raise InsufficientHistory(f"nothing was sold in the {len(kept)} rows to train on")
    estimator.fit(train[used], train[feats.TARGET], rows=rows, weight=weight)
    return Fitted(estimator, used, dropped)


def training_rows(
    estimator: LevelScaled, train: pd.DataFrame, frequency: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(a mask of the rows of ``train`` a fit learns from, their weights or None).

    A series' first period has no level (nothing before it to scale by), so its quantity would be
    learned as a ratio to 1: in monthly data that made most targets over 50 times their level (up
    to 4,106 in a 4,000-series export), the Poisson trees grew leaf values in the thousands and a
    recursive forecast overflowed to infinity. Those rows teach nothing a forecast uses (every
    forecast series has history), so no fit sees them. Of a ``frequency`` in RECENT_MONTHS with more
    than ZERO_SAMPLE_FROM rows, the periods of its last months only. Of what is left, :func:`zero_sample`.
    """
    rows = estimator.has_level(train)
    if len(train) > ZERO_SAMPLE_FROM and frequency in RECENT_MONTHS:
        dates = train[schema.DATE]
        rows &= (dates > dates.max() - pd.DateOffset(months=RECENT_MONTHS[frequency])).to_numpy()
    sampled, weight = zero_sample(train[feats.TARGET].to_numpy(dtype="float64")[rows])
    if sampled is not None:
        rows[rows] = sampled
    return rows, weight


def training_rule() -> dict:
    """Which rows a fit learns from (:func:`training_rows`), as a model's version recipe and metadata
    name it: the rows, and from ``from_rows`` the recent months and the rate of zeros kept."""
    return {"rows": TRAINING_ROWS, "from_rows": ZERO_SAMPLE_FROM, "recent_months": RECENT_MONTHS, "zero_rate": ZERO_SAMPLE_RATE}


PLAN_FILE, PLAN_ASSUMED = plan_names.PLAN_FILE, plan_names.PLAN_ASSUMED  # what a forecast says of its future (domain.plan)


def future_periods(
    base: pd.DataFrame, horizon: int, frequency: str, plan: pd.DataFrame | None = None, runs: feats.Runs | None = None
) -> pd.DataFrame:
    """The ``horizon`` periods after each series' last one (grid columns plus ``step``), step by
    step, each step's series in ``base``'s order (a grid sorted by series, then date; ``runs``:
    its layout, when known).

    ``plan`` (``date``, ``item_id``, ``store_id`` and ``unit_price`` and/or ``promotion``) gives
    the planned values of the periods it lists; elsewhere a period keeps the series' last price
    and has no promotion.
    """
    offset = _step(frequency, base)
    runs = runs or feats.Runs.of(base)
    last = base[[schema.ITEM, schema.STORE, schema.DATE]].take(runs.last).reset_index(drop=True)
    last[schema.PRICE] = base[schema.PRICE].groupby(runs.ids, sort=False).last().to_numpy()
    future = pd.concat(
        [last.assign(**{schema.DATE: last[schema.DATE] + step * offset, "step": step}) for step in range(1, horizon + 1)],
        ignore_index=True,
    )
    future[schema.QUANTITY] = np.nan
    future[schema.PROMOTION] = 0
    future["is_gap"] = 0
    if plan is not None and len(plan):
        planned = [column for column in (schema.PRICE, schema.PROMOTION) if column in plan]
        given = plan[[*feats.KEY_COLUMNS, *planned]].rename(columns={column: f"planned_{column}" for column in planned})
        future = future.merge(given, on=list(feats.KEY_COLUMNS), how="left", validate="one_to_one")
        for column in planned:
            future[column] = future[f"planned_{column}"].fillna(future[column])
        future[schema.PROMOTION] = future[schema.PROMOTION].astype("int8")
    return future[[*feats.BASE_COLUMNS, "step"]]


def _future_known(base, runs, future, frequency, codes, prior) -> pd.DataFrame:
    """The known-in-advance features of the future periods, series by series (each series'
    ``horizon`` rows in a row). Computed on each series' last period and its future only: the
    price reference continues from the counts of the series' earlier prices (and the prior's)."""
    count = len(runs.first)
    horizon = len(future) // max(count, 1)
    rows = pd.concat([base.take(runs.last).assign(step=0), future], ignore_index=True)
    frame = rows.take((np.arange(horizon + 1) * count + np.arange(count)[:, None]).ravel()).reset_index(drop=True)
    earlier = np.ones(len(base), dtype=bool)
    earlier[runs.last] = False
    before = feats.PriceCounts.of_rows(base[schema.PRICE].to_numpy(dtype="float64")[earlier], runs.ids[earlier])
    if prior is not None and len(prior):
        before = before + feats.PriceCounts.of_prior(prior, base, runs)
    starts = np.arange(len(frame)) % (horizon + 1) == 0
    known = feats.known_in_advance(frame, frequency, codes, before, feats.Runs(starts))
    return known[known["step"] > 0].reset_index(drop=True)


def _tail_and_future(base, runs, future, frequency, prior) -> tuple[pd.DataFrame, feats.Runs, tuple]:
    """(each series' tail, as long as the history features look back, followed by its future
    periods; that frame's layout; per row, the sum and count of its series' quantities before the
    tail, the prior's included)."""
    in_tail = runs.last[runs.ids] - np.arange(len(base)) < feats.history_needed(frequency)
    earlier = base.loc[~in_tail, [feats.TARGET]]  # only the column summed: cheaper to cut
    totals = feats.running_totals(earlier, runs.ids[~in_tail]).reindex(range(len(runs.first)), fill_value=0.0)
    sums, counts = totals["sum"].to_numpy(), totals["count"].to_numpy()
    if prior is not None and len(prior):  # the periods before the frame
        before = runs.per_series(base, prior[["sum", "count"]], 0.0)
        sums, counts = sums + before[:, 0], counts + before[:, 1]
    series = np.concatenate([runs.ids[in_tail], np.tile(np.arange(len(runs.first)), len(future) // max(len(runs.first), 1))])
    rows = pd.concat([base[in_tail].assign(step=0), future], ignore_index=True)
    order = np.lexsort((rows["step"].to_numpy(), series))  # by series, then date: the tail's rows stay in order
    layout = feats.Runs(feats.changes(series[order]))
    return rows.take(order).reset_index(drop=True), layout, (sums[layout.ids], counts[layout.ids])


def recursive_forecast(
    estimator,
    history: pd.DataFrame,
    horizon: int,
    frequency: str,
    codes: dict,
    names: list[str],
    *,
    return_features: bool = False,
    plan: pd.DataFrame | None = None,
    prior: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast ``horizon`` periods after each series' last period, feeding predictions back as lags.

    Known-in-advance features of the future periods (calendar, price, promotion, encodings) are
    computed once, with the price reference over each series' whole history, so it matches
    training. History features are recomputed each step on a tail of each series (as long as the
    features look back) plus the running totals of the periods before the tail: the same values
    as a recomputation over the whole history, at a fraction of the cost; only the step's rows are
    read, and the gap share, which no prediction changes, is computed once. The series' layout is
    found once. The future's price and promotion come from ``plan`` (see :func:`future_periods`),
    else each series' last price and no promotion.
    """
    base = feats.sort_grid(history[feats.BASE_COLUMNS])
    runs = feats.Runs.of(base)
    future = future_periods(base, horizon, frequency, plan, runs)
    known = _future_known(base, runs, future, frequency, codes, prior)
    work, layout, before = _tail_and_future(base, runs, future, frequency, prior)
    history_names = feats.history_feature_names(frequency)
    known = {name: known[name].to_numpy() for name in names if name not in history_names}
    quantity, is_gap = work[schema.QUANTITY].to_numpy(dtype="float64", copy=True), work["is_gap"].to_numpy(dtype="float64")
    step_of, used = work["step"].to_numpy(), []
    gaps = feats.gap_features(is_gap, layout, frequency, wanted=np.flatnonzero(step_of > 0))  # no prediction changes it
    for step in range(1, horizon + 1):
        at = np.flatnonzero(step_of == step)  # one row per series, in the order of ``known``'s
        values = feats.quantity_features(quantity, layout, frequency, before, wanted=at)
        values |= {name: column[at] for name, column in gaps.items()}
        rows = {name: values[name] for name in history_names} | {name: known[name][step - 1 :: horizon] for name in known}
        predicted = np.clip(estimator.predict(rows), 0, None)
        quantity[at] = predicted
        if return_features:
            keys = work[list(feats.KEY_COLUMNS)].take(at).reset_index(drop=True)
            used.append(pd.concat([keys, pd.DataFrame(rows)], axis=1).assign(prediction=predicted))
    work[schema.QUANTITY] = quantity
    result = work.loc[step_of > 0, [schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]]
    result = result.rename(columns={schema.QUANTITY: "prediction"}).reset_index(drop=True)
    if return_features:
        return result, pd.concat(used, ignore_index=True)
    return result


def seasonal_naive(history: pd.DataFrame, targets: pd.DataFrame, frequency: str) -> pd.Series:
    """For each (item, store, date) of ``targets``: the quantity a whole number of seasons
    earlier, the latest such period inside the series' ``history``; the series' last value where
    that period is missing (history shorter than a season); NaN for unknown series."""
    season = schema.SEASON_LENGTH[frequency]
    history = history[[schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]].assign(
        period=feats.period_number(history[schema.DATE], frequency)
    )
    ends = history.groupby(feats.SERIES)["period"].max().rename("end")
    last_values = history.sort_values("period").groupby(feats.SERIES)[schema.QUANTITY].last().rename("last_value")
    frame = targets[[schema.ITEM, schema.STORE]].join(ends, on=feats.SERIES).join(last_values, on=feats.SERIES)
    frame["period"] = feats.period_number(targets[schema.DATE], frequency)
    ahead = (frame["period"] - frame["end"]).clip(lower=1)
    frame["back"] = frame["period"] - np.ceil(ahead / season) * season
    lookup = history[[schema.ITEM, schema.STORE, "period", schema.QUANTITY]].rename(
        columns={"period": "back", schema.QUANTITY: "seasonal"}
    )
    lookup["back"] = lookup["back"].astype("float64")
    frame = frame.merge(lookup, on=[schema.ITEM, schema.STORE, "back"], how="left")
    return pd.Series(frame["seasonal"].fillna(frame["last_value"]).to_numpy(), index=targets.index, dtype="float64")


def scores(actual: pd.Series, predicted: pd.Series) -> dict:
    """MAE and WAPE (sum of absolute errors over sum of actuals; None when nothing was sold)."""
    error = (actual - predicted).abs()
    total = actual.abs().sum()
    return {"mae": round(float(error.mean()), 6), "wape": round(float(error.sum() / total), 6) if total else None}


def holdout_split(feature_frame: pd.DataFrame, frequency: str, horizon: int) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """(cutoff, training rows before it, held-out sales records from it on): the last ``horizon``
    periods of the dataset are held out; gap rows there are not scored (nothing was recorded)."""
    offset = _step(frequency, feature_frame)
    cutoff = feature_frame[schema.DATE].max() - (horizon - 1) * offset
    train = feature_frame[feature_frame[schema.DATE] < cutoff]
    holdout = feature_frame[(feature_frame[schema.DATE] >= cutoff) & feature_frame["is_gap"].eq(0)]
    return cutoff, train, holdout


INTERVAL_BINS = 10  # residual quantiles are taken per bin of predictions (errors grow with volume)
MIN_BIN_ROWS = 30


def interval_table(predicted: pd.Series, actual: pd.Series) -> dict:
    """Conformal P10/P90 offsets from forecast errors: the 10th and 90th percentile of
    ``actual - predicted`` within bins of the prediction (up to INTERVAL_BINS bins of at least
    MIN_BIN_ROWS errors each, by quantiles of the prediction), as a JSON-friendly table."""
    predicted = np.asarray(predicted, dtype="float64")
    errors = np.asarray(actual, dtype="float64") - predicted
    bins = int(max(1, min(INTERVAL_BINS, len(predicted) // MIN_BIN_ROWS)))
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bins + 1)[1:-1])) if bins > 1 else np.array([])
    which = np.searchsorted(edges, predicted, side="right")
    low = [float(np.quantile(errors[which == b], 0.1)) if (which == b).any() else 0.0 for b in range(len(edges) + 1)]
    high = [float(np.quantile(errors[which == b], 0.9)) if (which == b).any() else 0.0 for b in range(len(edges) + 1)]
    return {"edges": [round(float(e), 6) for e in edges], "low": [round(v, 6) for v in low], "high": [round(v, 6) for v in high]}


def apply_intervals(table: dict, predicted: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(P10, P90) of each prediction from an :func:`interval_table` (never below 0, never
    excluding the prediction itself)."""
    predicted = np.asarray(predicted, dtype="float64")
    which = np.searchsorted(np.asarray(table["edges"], dtype="float64"), predicted, side="right")
    low = np.clip(predicted + np.asarray(table["low"])[which], 0, predicted)
    high = np.maximum(predicted + np.asarray(table["high"])[which], predicted)
    return low, high


@dataclass(frozen=True)
class Holdout:
    """The backtest's split and its fit: the model fitted on the periods before ``cutoff``."""

    cutoff: pd.Timestamp
    train: pd.DataFrame
    holdout: pd.DataFrame
    fitted: Fitted


def holdout_fit(feature_frame: pd.DataFrame, manifest: dict, horizon: int) -> Holdout:
    """Fit on all but the last ``horizon`` periods: the one fit of a training run (see :func:`train`)."""
    cutoff, train, holdout = holdout_split(feature_frame, manifest["frequency"], horizon)
    if holdout.empty:
        raise InsufficientHistory(f"no sales records in the last {horizon} periods to backtest on")
    return Holdout(cutoff, train, holdout, fit(train, manifest["features"], manifest["frequency"]))


def _scored(feature_frame: pd.DataFrame, manifest: dict, horizon: int, window: Holdout) -> pd.DataFrame:
    """The held-out records with the fitted model's recursive ``prediction``. With
    ``known_in_advance`` in the manifest, the held-out periods' recorded prices and promotions
    are the plan."""
    known = list(manifest.get("known_in_advance") or [])
    plan = feature_frame.loc[feature_frame[schema.DATE] >= window.cutoff, [*feats.KEY_COLUMNS, *known]] if known else None
    fitted = window.fitted
    frequency, codes = manifest["frequency"], manifest["codes"]
    forecast = recursive_forecast(fitted.estimator, window.train, horizon, frequency, codes, fitted.names, plan=plan)
    scored = window.holdout[[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY]].merge(
        forecast, on=list(feats.KEY_COLUMNS), how="left"
    )
    # A series that starts inside the holdout has no forecast and no baseline: both say 0.
    scored["prediction"] = scored["prediction"].fillna(0.0)
    return scored


def cross_conformal(scored: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """(P10, P90) of each scored record from the interval table of the *other* half's errors.

    The records are split in two folds by series (alternate series in key order; by alternate
    periods for a single series), so every record's interval comes from errors it was not part
    of: an honest coverage without a second fit on an earlier window. None when a fold is empty.
    """
    series = scored.groupby(feats.SERIES, sort=True).ngroup().to_numpy()
    if series.max(initial=0) > 0:
        fold = series % 2
    else:
        fold = scored[schema.DATE].rank(method="dense").to_numpy().astype("int64") % 2
    low, high = np.zeros(len(scored)), np.zeros(len(scored))
    for side in (0, 1):
        source, target = fold != side, fold == side
        if not source.any() or not target.any():
            return None
        table = interval_table(scored["prediction"][source], scored[schema.QUANTITY][source])
        low[target], high[target] = apply_intervals(table, scored["prediction"][target])
    return low, high


def backtest(
    feature_frame: pd.DataFrame, manifest: dict, horizon: int, *, return_rows: bool = False, window: Holdout | None = None
):
    """Score the model fitted before the last ``horizon`` periods on them, recursively, against the baseline.

    ``window``: that fit (:func:`holdout_fit`), made here when not given. Besides MAE and WAPE:
    ``coverage_p10_p90``, the share of held-out records inside their cross-conformal P10-P90
    interval (:func:`cross_conformal`; None when it cannot be split); ``sums``, additive totals
    from which shards' metrics aggregate exactly; ``intervals``, the interval table of all the
    backtest's errors, which the served forecasts use. ``return_rows``: (scores, the scored rows:
    item, store, date, actual, prediction, naive, p10, p90) for the report.
    """
    frequency = manifest["frequency"]
    window = window or holdout_fit(feature_frame, manifest, horizon)
    scored = _scored(feature_frame, manifest, horizon, window)
    scored["baseline"] = seasonal_naive(window.train, scored, frequency).fillna(0.0).to_numpy()
    actual = scored[schema.QUANTITY]
    model_scores = scores(actual, scored["prediction"])
    baseline_scores = scores(actual, scored["baseline"])
    improvement = 1 - model_scores["mae"] / baseline_scores["mae"] if baseline_scores["mae"] else None
    sums = {
        "abs_error": float((actual - scored["prediction"]).abs().sum()),
        "naive_abs_error": float((actual - scored["baseline"]).abs().sum()),
        "actual": float(actual.abs().sum()),
        "count": len(scored),
    }
    bands, coverage = cross_conformal(scored), None
    if bands is not None:
        scored["p10"], scored["p90"] = bands  # the report draws the backtest's band too
        sums["inside_p10_p90"] = int(((actual >= bands[0]) & (actual <= bands[1])).sum())
        coverage = round(sums["inside_p10_p90"] / len(scored), 4)
    ratio = round(model_scores["mae"] / baseline_scores["mae"], 4) if baseline_scores["mae"] else None
    result = {
        "horizon": horizon,
        "cutoff": window.cutoff.strftime("%Y-%m-%d"),
        "train_rows": len(window.train),
        "holdout_rows": len(scored),
        "series": int(scored.groupby(feats.SERIES).ngroups),
        "model": {**model_scores, "coverage_p10_p90": coverage},
        "seasonal_naive": baseline_scores,
        "season_length": schema.SEASON_LENGTH[frequency],
        "mae_improvement": round(improvement, 4) if improvement is not None else None,
        "mae_ratio": ratio,
        "beats_baseline": bool(model_scores["mae"] < baseline_scores["mae"]),
        "coverage_p10_p90": coverage,
        "known_in_advance": list(manifest.get("known_in_advance") or []),
        "sums": sums,
        "intervals": interval_table(scored["prediction"], actual),
        "features_dropped": window.fitted.dropped,
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
            "estimator": f"{LevelScaled.__name__}(level floor {LEVEL_FLOOR})",
            "training_rule": training_rule(),
            "features": manifest["features"],
            "features_version": manifest["version"],
            "sklearn": sklearn.__version__,
        },
        sort_keys=True,
    )
    return f"{manifest['source_fingerprint'][:16]}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def train(feature_frame: pd.DataFrame, manifest: dict, horizon: int) -> ModelBundle:
    """Fit before the last ``horizon`` periods, backtest on them, and serve that very model.

    One fit, not a second one on all periods: the served model is exactly the one the backtest
    scored, and forecasting still feeds it the held-out periods as lags (the features are computed
    on the whole history). A refit would double the training cost for a model no backtest has
    seen, and between retrains (RetrainEveryDays) every model is older than the data anyway.
    """
    window = holdout_fit(feature_frame, manifest, horizon)
    return make_bundle(window.fitted, window.train, manifest, backtest(feature_frame, manifest, horizon, window=window))


def make_bundle(fitted: Fitted, train_rows: pd.DataFrame, manifest: dict, metrics: dict) -> ModelBundle:
    """The fitted model (trained on ``train_rows``) with its metadata (``metrics``: its backtest).
    :func:`train` in one call; the Predictions step calls the parts, to time each."""
    metadata = {
        "version": model_version(manifest),
        "features": manifest["features"],
        "features_used": fitted.names,
        "features_dropped": fitted.dropped,
        "frequency": manifest["frequency"],
        "params": MODEL_PARAMS,
        "training_rule": training_rule(),
        "metrics": metrics,
        "training_rows": len(train_rows),
        "training_date_range": manifest.get("date_range"),
        "trained_before": metrics["cutoff"],  # the fit saw the periods before it; forecasts see all as lags
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


def forecast(
    bundle: ModelBundle,
    feature_frame: pd.DataFrame,
    horizon: int,
    *,
    plan: pd.DataFrame | None = None,
    prior: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Predict ``horizon`` periods after each series' last period, for every series.

    ``plan``: the future prices and promotions (:func:`item_prediction.domain.plan.read_plan`);
    without one, each series keeps its last price and has no promotion. ``attrs["plan"]`` of
    the result says which (PLAN_FILE or PLAN_ASSUMED).
    """
    result = recursive_forecast(
        bundle.estimator,
        feature_frame,
        horizon,
        bundle.frequency,
        bundle.codes,
        bundle.feature_names,
        plan=plan,
        prior=feats.index_prior(prior),
    )
    table = bundle.metadata.get("metrics", {}).get("intervals")
    if table is not None:
        low, high = apply_intervals(table, result["prediction"])
        result = result.assign(p10=low, p50=result["prediction"], p90=high)
    result.attrs["plan"] = PLAN_FILE if plan is not None else PLAN_ASSUMED
    return result
