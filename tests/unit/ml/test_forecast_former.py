"""The forecast gives, bit for bit, the frames of the code it replaced (kept here verbatim, as of
7a5282d): on an M5-like shard with missing days, predicted from a window with its prior (as the
weekly predict mode does), with and without a plan of prices and promotions, and on the daily
and weekly shards of test_forecast_equivalence (full history and window)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features as feats
from item_prediction.domain import schema
from item_prediction.ml import model
from lambda_build import m5_like

from .test_bundle_format import same
from .test_forecast_equivalence import HORIZON, a_plan, fitted_shard

KNOWN = ("unit_price", "promotion")


# --- the former code (7a5282d), verbatim but for the names (and model. / feats. prefixes) -------


def to_bins(inputs, bins):  # model.to_bins: binned columns as bin numbers, on a frame
    if not bins:
        return inputs
    binned = {}
    for name, edges in bins.items():
        values = inputs[name].to_numpy(dtype="float64")
        binned[name] = np.where(np.isnan(values), np.nan, np.searchsorted(edges, values, side="left"))
    return inputs.assign(**binned)


def former_fit(self, X, y, *, rows=None, weight=None):  # LevelScaled.fit: on a frame of named columns
    assert weight is None  # these fits are under model.ZERO_SAMPLE_FROM rows: no zero sample
    if rows is not None:  # the rows with a level (model.training_rows), as the former fit was given them
        X, y = X[rows], y[rows]
    level = self._level(X)
    inputs = self._inputs(X, level)
    self.bins_ = model.weighted_bins(inputs, level) if len(inputs) <= model.BINNING_SUBSAMPLE else {}
    self.estimator.fit(to_bins(inputs, self.bins_), y.to_numpy(dtype="float64") / level, sample_weight=level)
    return self


def former_predict(self, X):  # LevelScaled.predict
    level = self._level(X)
    inputs = to_bins(self._inputs(X, level), getattr(self, "bins_", {}))  # a bundle from before bins_: none
    return self.estimator.predict(inputs) * level


def former_history_features(quantity, is_gap, runs, frequency, before=None, wanted=None):
    LAGS, WINDOWS, _rolling = feats.LAGS, feats.WINDOWS, feats._rolling  # noqa: N806
    values = {f"lag_{k}": runs.shift(quantity, k) for k in LAGS[frequency]}
    previous = pd.Series(runs.shift(quantity, 1))  # what is known at each period
    for window in WINDOWS[frequency]:
        values[f"rolling_mean_{window}"] = _rolling(previous, runs, window, "mean", 1, wanted).to_numpy()
    shortest = min(WINDOWS[frequency])  # the spread of the recent window; the longer one's added nothing
    values[f"rolling_std_{shortest}"] = _rolling(previous, runs, shortest, "std", 2, wanted).to_numpy()
    longest = max(WINDOWS[frequency])
    previous_gap = pd.Series(runs.shift(is_gap, 1))
    values[f"gap_share_{longest}"] = _rolling(previous_gap, runs, longest, "mean", 1, wanted).to_numpy()
    known = previous.to_numpy()
    running_sum = runs.cumsum(np.nan_to_num(known))
    running_count = runs.cumsum(~np.isnan(known) * 1.0)
    if before is not None:
        running_sum, running_count = running_sum + before[0], running_count + before[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        values["series_mean_to_date"] = np.where(running_count > 0, running_sum / running_count, np.nan)
    return values


def former_recursive_forecast(
    estimator, history, horizon, frequency, codes, names, *, return_features=False, plan=None, prior=None
):
    base = feats.sort_grid(history[feats.BASE_COLUMNS])
    runs = feats.Runs.of(base)
    future = model.future_periods(base, horizon, frequency, plan, runs)
    known = model._future_known(base, runs, future, frequency, codes, prior)
    work, layout, before = model._tail_and_future(base, runs, future, frequency, prior)
    history_names = feats.history_feature_names(frequency)
    known = {name: known[name].to_numpy() for name in names if name not in history_names}
    quantity, is_gap = work[schema.QUANTITY].to_numpy(dtype="float64", copy=True), work["is_gap"].to_numpy(dtype="float64")
    step_of, used = work["step"].to_numpy(), []
    for step in range(1, horizon + 1):
        at = np.flatnonzero(step_of == step)  # one row per series, in the order of ``known``'s
        values = former_history_features(quantity, is_gap, layout, frequency, before, wanted=at)
        rows = {name: values[name][at] for name in history_names} | {name: known[name][step - 1 :: horizon] for name in known}
        predicted = np.clip(former_predict(estimator, rows), 0, None)
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


def former_forecast(bundle, feature_frame, horizon, *, plan=None, prior=None):
    """``model.forecast`` (its wrapper did not change) around the former recursive forecast."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "recursive_forecast", former_recursive_forecast)
        return model.forecast(bundle, feature_frame, horizon, plan=plan, prior=prior)


# --- the shards ---------------------------------------------------------------------------------


@cache
def m5_shard(subsample: int):
    """(bundle, the same trained by the former code, the week's windowed features, their prior, a
    plan): 60 M5-like series (intermittent, late starters, weekly price changes, promotions), 4% of
    their days missing, and one new in the last days; trained up to a week before the end
    (``subsample``: model.BINNING_SUBSAMPLE, 0 for a fit that scikit-learn bins, as a shard of more
    than 200,000 rows is), then the last week's window built with the prior, as predict mode does."""
    data = m5_like.frame(m5_like.Shape(items=15, stores=4, days=240), seed=11)
    data = data[np.random.default_rng(2).random(len(data)) > 0.04]
    dates = sorted(data["date"].unique())
    new = pd.DataFrame({"date": dates[-5:], "item_id": "NEW", "store_id": "CA_1", "quantity": 2, "unit_price": 3.5})
    new["promotion"] = 0
    data = pd.concat([data, new], ignore_index=True)  # a product new in the week's upload
    trained, manifest = feats.build_features(data[data["date"] <= dates[-8]], "D", known_in_advance=KNOWN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "BINNING_SUBSAMPLE", subsample)
        bundle = model.train(trained, manifest, 14)
        patch.setattr(model.LevelScaled, "fit", former_fit)
        patch.setattr(model.LevelScaled, "predict", former_predict)
        former = model.train(trained, manifest, 14)  # as the former code trained and backtested it
    assert bool(bundle.estimator.bins_) == bool(subsample) and hasattr(former.estimator.estimator, "feature_names_in_")
    assert bundle.metadata == former.metadata  # the same backtest
    since = dates[-8 - feats.history_needed("D")]
    prior = feats.prior_table(trained, since, "D")
    cuts = prior.set_index(feats.SERIES)["cut"].reindex(pd.MultiIndex.from_frame(data[feats.SERIES])).fillna(since)
    rows = data[pd.to_datetime(data["date"]).to_numpy() >= cuts.to_numpy()]
    window, _ = feats.build_features(rows, "D", known_in_advance=KNOWN, prior=prior)
    plan = a_plan(window, "D").sample(frac=0.8, random_state=3)  # some planned periods, the rest assumed
    return bundle, former, window, prior, plan.assign(promotion=np.random.default_rng(4).integers(0, 2, len(plan)))


@pytest.mark.parametrize("subsample", [model.BINNING_SUBSAMPLE, 0], ids=["binned here", "binned by scikit-learn"])
@pytest.mark.parametrize("planned", [False, True])
@pytest.mark.parametrize("trained_by", ["this code", "the former code"])
def test_the_weekly_forecast_of_an_m5_like_window_is_the_former_codes(planned, subsample, trained_by):
    """A model fitted here (on a block, without names) or saved before (fitted on a frame) forecasts
    what the former code forecast with the model it fitted."""
    bundle, former, window, prior, plan = m5_shard(subsample)
    plan = plan if planned else None
    got = model.forecast(bundle if trained_by == "this code" else former, window, 14, plan=plan, prior=prior)
    expected = former_forecast(former, window, 14, plan=plan, prior=prior)
    assert len(got) == 61 * 14 and got["prediction"].gt(0).mean() > 0.5 and window["is_gap"].any() and prior["count"].gt(0).all()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs == expected.attrs


@cache
def former_fitted_shard(frequency: str):
    """test_forecast_equivalence's fractional shard with its model fitted by the former code."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.LevelScaled, "fit", former_fit)
        return fitted_shard.__wrapped__(frequency, fractional=True)


@pytest.mark.parametrize("frequency", ["D", "W"])
@pytest.mark.parametrize("windowed", [False, True])
@pytest.mark.parametrize("trained_by", ["this code", "the former code"])
def test_the_features_fed_each_step_are_the_former_codes(frequency, windowed, trained_by):
    fit, codes, full, window, prior = fitted_shard(frequency, fractional=True)
    former = former_fitted_shard(frequency)[0]
    frame, prior = (window, prior) if windowed else (full, None)
    plan = a_plan(frame, frequency)
    arguments = (frame, HORIZON[frequency], frequency, codes, fit.names)
    estimator = fit.estimator if trained_by == "this code" else former.estimator
    got, got_used = model.recursive_forecast(estimator, *arguments, return_features=True, plan=plan, prior=prior)
    expected, expected_used = former_recursive_forecast(
        former.estimator, *arguments, return_features=True, plan=plan, prior=prior
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(got_used, expected_used, check_exact=True)


@pytest.mark.parametrize("subsample", [model.BINNING_SUBSAMPLE, 0], ids=["binned here", "binned by scikit-learn"])
def test_a_fit_on_the_block_builds_the_former_fits_estimator_but_its_column_names(subsample):
    bundle, former, *_ = m5_shard(subsample)
    fitted, before = vars(bundle.estimator.estimator).copy(), vars(former.estimator.estimator).copy()
    assert list(before.pop("feature_names_in_")) == [*bundle.feature_names, "log_level"]
    assert same(fitted, before)
    assert same({**vars(bundle.estimator), "estimator": None}, {**vars(former.estimator), "estimator": None})
