"""The recursive forecast gives exactly the numbers of the straightforward recursion it replaced
(each step recomputing every feature on each series' tail plus its future, known-in-advance
features over the whole history, joins by key), daily and weekly, with and without a plan, from
a full history and from a window with its prior."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features
from item_prediction.ml import model
from lambda_build.sample_data import generate_sales

KNOWN = ("unit_price", "promotion")
HORIZON = {"D": 14, "W": 6}


def reference_future_periods(base, horizon, frequency, plan=None):
    """The future periods by grouping on the string keys (the code before the layout was reused)."""
    offset = model._step(frequency, base)
    last = base.groupby(features.SERIES, sort=False).agg({"date": "max", "unit_price": "last"}).reset_index()
    future = pd.concat([last.assign(date=last["date"] + step * offset, step=step) for step in range(1, horizon + 1)])
    future = future.reset_index(drop=True).assign(quantity=np.nan, promotion=0, is_gap=0)
    if plan is not None and len(plan):
        given = plan.rename(columns={"unit_price": "planned_unit_price", "promotion": "planned_promotion"})
        future = future.merge(given, on=list(features.KEY_COLUMNS), how="left", validate="one_to_one")
        for column in ("unit_price", "promotion"):
            future[column] = future[f"planned_{column}"].fillna(future[column])
        future["promotion"] = future["promotion"].astype("int8")
    return future[[*features.BASE_COLUMNS, "step"]]


def reference_forecast(estimator, history, horizon, frequency, codes, names, *, plan=None, prior=None):
    """(forecast, features used): every feature of the whole tail plus future recomputed each step."""
    base = features.sort_grid(history[features.BASE_COLUMNS])
    future = reference_future_periods(base, horizon, frequency, plan)
    known_names = [name for name in names if name not in features.history_feature_names(frequency)]
    everything = features.sort_grid(pd.concat([base.assign(step=0), future], ignore_index=True))
    runs = features.Runs.of(everything)
    before = features.PriceCounts.of_prior(prior, everything, runs) if prior is not None else None
    known = features.known_in_advance(everything, frequency, codes, before)
    known = known.loc[known["step"] > 0, [*features.KEY_COLUMNS, *known_names]]
    position = base.groupby(features.SERIES, sort=False).cumcount(ascending=False)
    in_tail = position < features.history_needed(frequency)
    totals = features.running_totals(base[~in_tail])
    totals = totals if prior is None else totals.add(prior[["sum", "count"]], fill_value=0.0)
    work = features.sort_grid(pd.concat([base[in_tail].assign(step=0), future], ignore_index=True))
    used = []
    for step in range(1, horizon + 1):
        frame = features.add_history(work.copy(), frequency, totals)
        rows = frame.loc[frame["step"] == step, [*features.KEY_COLUMNS, *features.history_feature_names(frequency)]]
        rows = rows.merge(known, on=list(features.KEY_COLUMNS), how="left", validate="one_to_one")
        predicted = np.clip(estimator.predict(rows[names]), 0, None)
        work.loc[work["step"] == step, "quantity"] = predicted
        used.append(rows.assign(prediction=predicted))
    result = work.loc[work["step"] > 0, ["date", "item_id", "store_id", "quantity"]]
    return result.rename(columns={"quantity": "prediction"}).reset_index(drop=True), pd.concat(used, ignore_index=True)


def sales(frequency: str, fractional: bool) -> pd.DataFrame:
    """Six series with gaps and price changes: one starting late, one ending before the others'
    window, one without prices, one new in the last periods; quantities fractional or whole."""
    data = generate_sales(
        items=3, stores=2, periods=170 if frequency == "D" else 130, frequency=frequency, seed=5, gap_rate=0.08, invalid=False
    ).frame
    dates = sorted(data["date"].unique())
    key = lambda frame: frame["item_id"] + "|" + frame["store_id"]  # noqa: E731
    data = data[(key(data) != "ITEM-001|STORE-00") | (data["date"] >= dates[40])]
    data = data[(key(data) != "ITEM-002|STORE-01") | (data["date"] < dates[-70])].copy()
    data["unit_price"] *= np.random.default_rng(1).choice([0.9, 1.0, 1.0, 1.1], len(data))
    data.loc[key(data) == "ITEM-000|STORE-01", "unit_price"] = np.nan
    new = pd.DataFrame({"date": dates[-4:], "item_id": "NEW", "store_id": "STORE-00", "quantity": 3, "unit_price": 2.5})
    data = pd.concat([data, new.assign(promotion=0)], ignore_index=True)
    return data.assign(quantity=data["quantity"] * (0.37 if fractional else 1))


@cache
def fitted_shard(frequency: str, fractional: bool):
    """(model, codes, full-history features, windowed features, the window's prior): the model
    fitted up to 8 periods before the end, and the prior of its window (see features.prior_table)."""
    data = sales(frequency, fractional)
    dates = sorted(data["date"].unique())
    trained, manifest = features.build_features(data[data["date"] <= dates[-8]], frequency, known_in_advance=KNOWN)
    fit = model.fit(trained, manifest["features"])
    since = dates[-8 - features.history_needed(frequency)]
    prior = features.prior_table(trained, since, frequency)
    cuts = prior.set_index(features.SERIES)["cut"].dt.strftime("%Y-%m-%d")
    window = data[data["date"] >= cuts.reindex(pd.MultiIndex.from_frame(data[features.SERIES])).fillna(since).to_numpy()]
    windowed, _ = features.build_features(window, frequency, known_in_advance=KNOWN, prior=prior)
    full, _ = features.build_features(data, frequency, known_in_advance=KNOWN)
    return fit, manifest["codes"], full, windowed, features.index_prior(prior)


def a_plan(frame: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Lower prices and promotions on some future periods of every other series."""
    future = reference_future_periods(features.sort_grid(frame[features.BASE_COLUMNS]), HORIZON[frequency], frequency)
    chosen = future[(future["step"] % 3 != 1) & (future.groupby(features.SERIES).ngroup() % 2 == 0)]
    return chosen[list(features.KEY_COLUMNS)].assign(unit_price=chosen["unit_price"].fillna(4.0) * 0.8, promotion=1)


@pytest.mark.parametrize("frequency", ["D", "W"])
@pytest.mark.parametrize("planned", [False, True])
@pytest.mark.parametrize("windowed", [False, True])
def test_the_forecast_gives_the_straightforward_recursions_numbers(frequency, planned, windowed):
    fit, codes, full, window, prior = fitted_shard(frequency, fractional=True)
    frame, prior = (window, prior) if windowed else (full, None)
    plan = a_plan(frame, frequency) if planned else None
    arguments = (fit.estimator, frame, HORIZON[frequency], frequency, codes, fit.names)
    got, got_used = model.recursive_forecast(*arguments, return_features=True, plan=plan, prior=prior)
    expected, expected_used = reference_forecast(*arguments, plan=plan, prior=prior)
    assert got["prediction"].gt(0).all() and got_used["promotion"].eq(1).any() == planned
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(got_used, expected_used, check_exact=True)
    assert model.recursive_forecast(*arguments, plan=plan, prior=prior).equals(got)


@pytest.mark.parametrize("frequency", ["D", "W"])
def test_a_window_with_its_prior_forecasts_exactly_what_the_full_history_forecasts(frequency):
    """Whole quantities sum exactly: the window's running totals plus the prior's are the full history's."""
    fit, codes, full, window, prior = fitted_shard(frequency, fractional=False)
    arguments = (fit.estimator, HORIZON[frequency], frequency, codes, fit.names)
    from_window = model.recursive_forecast(fit.estimator, window, *arguments[1:], prior=prior)
    pd.testing.assert_frame_equal(from_window, model.recursive_forecast(fit.estimator, full, *arguments[1:]), check_exact=True)
    assert len(window) < len(full) * 0.6 and from_window.groupby(features.SERIES).ngroups == 7


def test_the_expanding_median_after_earlier_counts_is_pandas_expanding_median_of_the_whole_series():
    rng = np.random.default_rng(3)
    sizes, earlier = [5, 1, 9, 4, 7], [3, 0, 40, 2, 0]  # rows in the frame; periods before it
    ids = np.repeat(np.arange(len(sizes)), sizes)
    prices = rng.choice([1.0, 1.5, 2.0, 2.25, np.nan], len(ids))
    prices[ids == 3] = np.nan  # no price in the frame, some before it
    history = [rng.choice([1.0, 1.25, 2.0, 3.0], n) for n in earlier]
    before = features.PriceCounts.of_rows(np.concatenate(history), np.repeat(np.arange(len(sizes)), earlier))
    got = features.expanding_median(prices, features.Runs(features.changes(ids)), before)
    whole = [np.concatenate([history[s], prices[ids == s]]) for s in range(len(sizes))]
    expected = [
        pd.Series(series).expanding(min_periods=1).median().to_numpy()[-n:] for series, n in zip(whole, sizes, strict=True)
    ]
    np.testing.assert_array_equal(got, np.concatenate(expected))
    assert np.isnan(got[ids == 1]).all() == np.isnan(prices[ids == 1]).all() and not np.isnan(got[ids == 3]).any()
