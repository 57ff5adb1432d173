"""The model against its baseline, the baseline itself, forecasts and the saved bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features
from item_prediction.ml import model
from lambda_build import accuracy_corpus, m5_like
from lambda_build.sample_data import generate_sales

from .test_forecast_former import to_bins


def feature_set(known_in_advance=("unit_price", "promotion"), **kwargs):
    sample = generate_sales(invalid=False, **kwargs)
    return features.build_features(sample.frame, kwargs.get("frequency", "D"), known_in_advance=known_in_advance)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_beats_seasonal_naive_on_data_with_signal(seed):
    frame, manifest = feature_set(items=4, stores=2, periods=500, seed=seed)
    result = model.backtest(frame, manifest, horizon=14)
    assert result["beats_baseline"] is True
    assert result["model"]["mae"] < result["seasonal_naive"]["mae"]
    assert result["mae_improvement"] == pytest.approx(1 - result["model"]["mae"] / result["seasonal_naive"]["mae"], abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_report_is_truthful_on_data_without_signal(seed):
    frame, manifest = feature_set(items=3, stores=2, periods=300, seed=seed, signal=False)
    result = model.backtest(frame, manifest, horizon=14)
    assert result["beats_baseline"] == (result["model"]["mae"] < result["seasonal_naive"]["mae"])
    assert np.sign(result["mae_improvement"]) == np.sign(result["seasonal_naive"]["mae"] - result["model"]["mae"])
    assert 0 < result["model"]["wape"] and 0 < result["seasonal_naive"]["wape"]


def test_seasonal_naive_repeats_last_season():
    values = [float(v) for v in range(1, 22)]  # three weeks
    frame, _ = features.build_features(
        pd.DataFrame(
            {
                "date": pd.date_range("2024-01-01", periods=21).strftime("%Y-%m-%d"),
                "item_id": "A",
                "store_id": "S",
                "quantity": values,
                "unit_price": 1.0,
                "promotion": 0,
            }
        ),
        "D",
    )
    history = frame.iloc[:14]
    future = pd.DataFrame({"item_id": "A", "store_id": "S", "date": pd.date_range("2024-01-15", periods=10)})
    predicted = model.seasonal_naive(history, future, "D")
    assert list(predicted) == values[7:14] + values[7:10]  # step back whole weeks into the history


def test_forecast_covers_every_series_and_horizon_and_round_trips():
    frame, manifest = feature_set(items=3, stores=2, periods=200, seed=4)
    bundle = model.train(frame, manifest, horizon=7)
    forecast = model.forecast(bundle, frame, 7)
    assert len(forecast) == 6 * 7 and forecast["prediction"].ge(0).all()
    last = frame.groupby(["item_id", "store_id"])["date"].max()
    for (item, store), rows in forecast.groupby(["item_id", "store_id"]):
        assert rows["date"].min() == last[(item, store)] + pd.Timedelta(days=1)
    restored = model.ModelBundle.loads(bundle.dumps())
    pd.testing.assert_frame_equal(model.forecast(restored, frame, 7), forecast)
    assert (
        bundle.metadata["libraries"]["scikit-learn"] and bundle.metadata["training_fingerprint"] == manifest["source_fingerprint"]
    )
    assert bundle.metadata["version"] == model.model_version(manifest)


def test_backtest_needs_history():
    frame, manifest = feature_set(items=1, stores=1, periods=10, seed=0)
    with pytest.raises(model.InsufficientHistory, match="rows to train on"):
        model.backtest(frame, manifest, horizon=14)


@pytest.mark.parametrize("frequency", ["D", "W"])
def test_forecast_features_equal_a_recomputation_over_history_plus_predictions(frequency):
    """No train/serve skew: the features the recursive forecast fed the model for each future
    period are the ones training would compute if the predictions had been observed."""
    frame, manifest = feature_set(items=2, stores=2, periods=150 if frequency == "D" else 120, frequency=frequency, seed=7)
    fitted = model.fit(frame, manifest["features"])
    forecast, used = model.recursive_forecast(
        fitted.estimator, frame, 6, frequency, manifest["codes"], fitted.names, return_features=True
    )
    observed = forecast.rename(columns={"prediction": "quantity"})
    last_price = frame.sort_values("date").groupby(["item_id", "store_id"])["unit_price"].last()
    observed["unit_price"] = [
        last_price[(item, store)] for item, store in zip(observed["item_id"], observed["store_id"], strict=True)
    ]
    observed["promotion"], observed["is_gap"] = 0, 0
    extended = pd.concat([frame[features.BASE_COLUMNS], observed[features.BASE_COLUMNS]], ignore_index=True)
    recomputed = features.compute_features(extended, frequency, manifest["codes"])
    keys = ["item_id", "store_id", "date"]
    merged = used.merge(recomputed[keys + fitted.names], on=keys, suffixes=("", "_full"))
    assert len(merged) == len(forecast) == 4 * 6
    for name in fitted.names:
        np.testing.assert_allclose(
            merged[name].to_numpy(float), merged[f"{name}_full"].to_numpy(float), rtol=1e-9, atol=1e-12, err_msg=name
        )
    # (Predictions are not compared: a 1e-12 rounding difference may fall on a split threshold.)
    written = forecast.merge(used[keys + ["prediction"]], on=keys, suffixes=("", "_used"))
    np.testing.assert_array_equal(written["prediction"], written["prediction_used"])


def test_weekly_seasonal_naive_steps_back_52_weeks_and_falls_back_to_the_last_value():
    dates = pd.date_range("2022-01-03", periods=60, freq="W-MON")
    history = pd.DataFrame({"item_id": "A", "store_id": "S", "date": dates, "quantity": np.arange(60, dtype=float)})
    short = history.iloc[:30]
    targets = pd.DataFrame(
        {
            "item_id": ["A", "A", "B"],
            "store_id": "S",
            "date": [dates[59] + pd.Timedelta(weeks=1), dates[59] + pd.Timedelta(weeks=3), dates[59]],
        }
    )
    assert list(model.seasonal_naive(history, targets.iloc[:2], "W")) == [8.0, 10.0]  # 52 weeks before
    soon = pd.DataFrame(
        {
            "item_id": ["A", "A", "B"],
            "store_id": "S",
            "date": [dates[29] + pd.Timedelta(weeks=1), dates[29] + pd.Timedelta(weeks=3), dates[29]],
        }
    )
    # 52 weeks before lies before a 30-week history: the last value; an unknown series: NaN.
    np.testing.assert_array_equal(model.seasonal_naive(short, soon, "W"), [29.0, 29.0, np.nan])


@pytest.mark.parametrize(("value", "expected"), [(7, 7), ("14", 14), (366, 366)])
def test_horizon_accepts_whole_periods(value, expected):
    assert model.check_horizon(value) == expected


@pytest.mark.parametrize("value", [0, -1, 367, "two", 1.5, True, None])
def test_horizon_rejects_anything_else(value):
    with pytest.raises(ValueError, match="horizon must be"):
        model.check_horizon(value)


def test_model_version_follows_data_and_recipe():
    _, manifest = feature_set(items=1, stores=1, periods=60, seed=1)
    version = model.model_version(manifest)
    assert version == model.model_version(dict(manifest))
    assert version != model.model_version({**manifest, "source_fingerprint": "0" * 64})
    assert version != model.model_version({**manifest, "features": manifest["features"][:-1]})


def test_the_model_version_names_the_zero_sample(monkeypatch):
    _, manifest = feature_set(items=1, stores=1, periods=60, seed=1)
    version = model.model_version(manifest)
    monkeypatch.setattr(model, "ZERO_SAMPLE_RATE", 0.25)
    assert model.model_version(manifest) != version


def test_the_model_version_names_its_training_rows(monkeypatch):
    _, manifest = feature_set(items=1, stores=1, periods=60, seed=1)
    version = model.model_version(manifest)
    monkeypatch.setattr(model, "TRAINING_ROWS", "every row")
    assert model.model_version(manifest) != version


def test_zero_sample_keeps_a_small_set_whole_and_every_sale_of_a_large_one(monkeypatch):
    target = np.random.default_rng(1).poisson(0.6, 40_000).astype("float64")  # about 55% zeros
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", len(target))
    assert model.zero_sample(target) == (None, None)  # at the bound: every row, unweighted
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", len(target) - 1)
    rows, weight = model.zero_sample(target)
    sold = target != 0
    assert rows[sold].all(), "every row that sold is kept"
    zeros = (~sold).sum()
    assert abs(rows[~sold].sum() - zeros * model.ZERO_SAMPLE_RATE) < 5 * np.sqrt(zeros * 0.25)
    assert np.array_equal(weight, np.where(sold[rows], 1.0, 1 / model.ZERO_SAMPLE_RATE))
    assert abs(weight[~sold[rows]].sum() - zeros) < 10 * np.sqrt(zeros), "the kept zeros stand for all of them"
    again = model.zero_sample(target.copy())
    assert np.array_equal(again[0], rows) and np.array_equal(again[1], weight), "the same set, the same sample"


def test_a_large_training_set_is_fitted_on_its_zero_sample(monkeypatch):
    """What scikit-learn is given: the sampled rows with a level only, their scaled target, and
    weights of level x (1 for a sale, 1 / rate for a kept zero); a set at the bound is given whole
    but for each series' first period."""
    frame, manifest = features.build_features(m5_like.frame(m5_like.Shape(items=15, stores=4, days=240), seed=11), "D")
    target = frame["quantity"].to_numpy(dtype="float64")
    seen = {}
    original = model.HistGradientBoostingRegressor.fit

    def spy(self, X, y, sample_weight=None):
        seen.update(rows=len(X), y=y, weight=sample_weight)
        return original(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(model.HistGradientBoostingRegressor, "fit", spy)
    firsts = frame.groupby(["item_id", "store_id"]).cumcount().to_numpy() == 0
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", (~firsts).sum() - 1)
    fitted = model.fit(frame, manifest["features"])
    sampled, weight = model.zero_sample(target[~firsts])
    rows = ~firsts
    rows[rows] = sampled
    assert (target == 0).mean() > 0.4 and seen["rows"] == rows.sum() < 0.8 * len(frame)
    level = fitted.estimator._level(frame[fitted.names])[rows]
    np.testing.assert_array_equal(seen["y"], target[rows] / level)
    np.testing.assert_array_equal(seen["weight"], level * weight)
    assert fitted.estimator.bins_, "the sample's bin edges, weighted as it is"
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", (~firsts).sum())
    whole = model.fit(frame, manifest["features"])
    assert seen["rows"] == len(frame) - firsts.sum() == len(frame) - 60, "every row but the 60 series' first"
    np.testing.assert_array_equal(seen["weight"], whole.estimator._level(frame[whole.names])[~firsts])


@pytest.mark.parametrize("frequency", ["D", "W"])
def test_a_large_daily_training_set_fits_on_its_recent_months(monkeypatch, frequency):
    """Over the bound, a daily set fits on the rows of its last RECENT_MONTHS months only (weekly and
    monthly sets on every period); at the bound, every period; the holdout fit passes the frequency."""
    frame, manifest = features.build_features(m5_like.frame(m5_like.Shape(items=6, stores=2, days=900), seed=4), "D")
    seen = {}
    original = model.HistGradientBoostingRegressor.fit

    def spy(self, X, y, sample_weight=None):
        seen["rows"] = len(X)
        return original(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(model.HistGradientBoostingRegressor, "fit", spy)
    monkeypatch.setattr(model, "ZERO_SAMPLE_RATE", 1.0)  # every zero kept: only the window counts
    firsts = frame.groupby(["item_id", "store_id"]).cumcount().to_numpy() == 0
    recent = (frame["date"] > frame["date"].max() - pd.DateOffset(months=18)).to_numpy()
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", len(frame) - 1)
    model.fit(frame, manifest["features"], frequency)
    assert seen["rows"] == ((~firsts & recent).sum() if frequency == "D" else (~firsts).sum())
    assert 0.5 * len(frame) < (~firsts & recent).sum() < 0.7 * len(frame)
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", len(frame))
    model.fit(frame, manifest["features"], frequency)
    assert seen["rows"] == (~firsts).sum()
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", 1_000)
    window = model.holdout_fit(frame, manifest, 14)
    cut = window.train
    later = cut.groupby(["item_id", "store_id"]).cumcount() > 0
    assert seen["rows"] == ((cut["date"] > cut["date"].max() - pd.DateOffset(months=18)) & later).sum()


def test_no_fit_learns_from_a_series_first_period():
    """A series' first period has no level (nothing before it): its quantity as a ratio to 1 made
    monthly Poisson trees grow leaf values in the hundreds and the forecast overflow (3e270 here
    before). Those rows are left out: every tree's leaves stay small, every forecast finite and
    within the data's range."""
    export = accuracy_corpus.generate(
        frequency="M", series=2000, periods=60, seed=5, start="2020-01-01", stores=2, level=(4.0, 1.0)
    )
    frame, manifest = features.build_features(export, "M", known_in_advance=["unit_price", "promotion"])
    window = model.holdout_fit(frame, manifest, 6)
    estimator = window.fitted.estimator
    firsts = window.train.groupby(["item_id", "store_id"]).cumcount().to_numpy() == 0
    np.testing.assert_array_equal(estimator.has_level(window.train), ~firsts)
    leaves = np.concatenate([tree[0].nodes["value"][tree[0].nodes["is_leaf"] == 1] for tree in estimator.estimator._predictors])
    assert np.abs(leaves).max() < 2, "no tree multiplies a prediction by more than e^2"
    scored = model._scored(frame, manifest, 6, window)
    assert np.isfinite(scored["prediction"]).all() and scored["prediction"].max() < 2 * frame["quantity"].max()


@pytest.mark.parametrize("signal", [True, False])
def test_the_backtest_report_matches_an_independent_recomputation(signal):
    """The reported numbers are what scoring the holdout by hand gives: the baseline with a
    plain loop (not model.seasonal_naive), the model from a fresh fit on the same cut."""
    frame, manifest = feature_set(items=2, stores=2, periods=200, seed=5, signal=signal, known_in_advance=())
    horizon = 10
    result = model.backtest(frame, manifest, horizon)
    cutoff = frame["date"].max() - pd.Timedelta(days=horizon - 1)
    train = frame[frame["date"] < cutoff]
    holdout = frame[(frame["date"] >= cutoff) & (frame["is_gap"] == 0)]
    baseline = []
    for row in holdout.itertuples():
        history = train[(train["item_id"] == row.item_id) & (train["store_id"] == row.store_id)].set_index("date")["quantity"]
        back = row.date
        while back > history.index.max():
            back -= pd.Timedelta(days=7)
        baseline.append(history.get(back, history.iloc[-1]))
    actual = holdout["quantity"].to_numpy()
    baseline_mae = np.mean(np.abs(actual - np.array(baseline)))
    fitted = model.fit(train, manifest["features"])
    forecast = model.recursive_forecast(fitted.estimator, train, horizon, "D", manifest["codes"], fitted.names)
    predicted = holdout.merge(forecast, on=["date", "item_id", "store_id"], how="left")["prediction"].to_numpy()
    model_mae = np.mean(np.abs(actual - predicted))
    assert (
        result["holdout_rows"] == len(holdout)
        and result["train_rows"] == len(train)
        and result["cutoff"] == cutoff.strftime("%Y-%m-%d")
    )
    assert result["seasonal_naive"]["mae"] == pytest.approx(baseline_mae, abs=1e-6)
    assert result["model"]["mae"] == pytest.approx(model_mae, abs=1e-6)
    assert result["model"]["wape"] == pytest.approx(np.abs(actual - predicted).sum() / actual.sum(), abs=1e-6)
    assert result["beats_baseline"] == (model_mae < baseline_mae)
    assert result["mae_improvement"] == pytest.approx(1 - model_mae / baseline_mae, abs=1e-4)


# -- features without information (issue 9.1) -------------------------------------------------


def test_an_export_without_prices_trains_without_the_price_features_and_says_so():
    sample = generate_sales(items=2, stores=1, periods=60, frequency="W", seed=1, invalid=False)
    frame, manifest = features.build_features(sample.frame.drop(columns=["unit_price"]), "W", known_in_advance=["unit_price"])
    bundle = model.train(frame, manifest, horizon=8)
    dropped = bundle.metadata["features_dropped"]
    assert dropped["unit_price"] == dropped["price_ratio"] == "all missing" and dropped["price_change"] == "constant"
    assert (
        bundle.metadata["features_used"] == bundle.feature_names == [name for name in manifest["features"] if name not in dropped]
    )
    assert list(bundle.estimator.feature_names_in_) == bundle.feature_names
    assert bundle.metadata["metrics"]["features_dropped"]["unit_price"] == "all missing"
    forecast = model.forecast(model.ModelBundle.loads(bundle.dumps()), frame, 8)
    assert len(forecast) == 2 * 8 and forecast["prediction"].notna().all()


def test_a_fit_decides_from_its_own_rows():
    """60 weeks: the training run fits on the 52 before the holdout, where a 52-week lag is
    always missing; a fit on all 60 has 8 weeks with one and uses it."""
    frame, manifest = feature_set(items=1, stores=1, periods=60, frequency="W", seed=3)
    bundle = model.train(frame, manifest, horizon=8)
    assert (
        bundle.metadata["features_dropped"]["lag_52"] == bundle.metadata["metrics"]["features_dropped"]["lag_52"] == "all missing"
    )
    assert "lag_52" not in bundle.feature_names
    assert "lag_52" in model.fit(frame, manifest["features"]).names
    assert bundle.metadata["features_dropped"]["item_code"] == "constant"  # one series


def test_a_dataset_where_a_lag_is_never_known_trains():
    frame, manifest = feature_set(items=4, stores=1, periods=30, frequency="W", seed=2)
    assert frame["lag_52"].isna().all()
    bundle = model.train(frame, manifest, horizon=8)
    assert bundle.metadata["features_dropped"]["lag_52"] == "all missing"
    assert len(model.forecast(bundle, frame, 8)) == 4 * 8


def test_informative_features_keeps_a_feature_that_is_sometimes_missing():
    train = pd.DataFrame(
        {"empty": np.nan, "same": 2.0, "same_or_missing": [1.0, np.nan, 1.0], "varies": [1, 2, 3]}, index=range(3)
    )
    used, dropped = model.informative_features(train, ["empty", "same", "same_or_missing", "varies"])
    assert used == ["same_or_missing", "varies"]
    assert dropped == {"empty": "all missing", "same": "constant"}


def test_leaving_out_constant_features_changes_no_prediction():
    frame, manifest = feature_set(items=2, stores=1, periods=150, seed=7)
    fitted = model.fit(frame, manifest["features"])
    assert fitted.dropped == {"store_code": "constant"}  # one store
    everything = model.LevelScaled(manifest["features"], **model.MODEL_PARAMS)
    rows, _ = model.training_rows(everything, frame)
    everything.fit(frame[manifest["features"]], frame["quantity"], rows=rows)
    np.testing.assert_array_equal(everything.predict(frame[manifest["features"]]), fitted.estimator.predict(frame[fitted.names]))


def _small(shape: str) -> tuple[pd.DataFrame, str]:
    if shape.startswith("weekly"):
        sample = generate_sales(items=1, stores=1, periods=int(shape.split("-")[1]), frequency="W", seed=5, invalid=False)
        return sample.frame.drop(columns=["unit_price"]), "W"
    if shape == "nothing sold":
        sample = generate_sales(items=2, stores=1, periods=100, seed=5, invalid=False)
        return sample.frame.assign(quantity=0), "D"
    sample = generate_sales(items=1, stores=1, periods=int(shape.split("-")[1]), seed=5, invalid=False)
    return sample.frame, "D"


@pytest.mark.parametrize(
    ("shape", "predicts"),
    [
        ("daily-1", False),
        ("daily-3", False),
        ("daily-40", False),
        ("daily-70", True),
        ("weekly-3", False),
        ("weekly-20", False),
        ("weekly-60", True),
        ("weekly-80", True),
        ("nothing sold", False),
    ],
)
def test_small_datasets_predict_or_say_there_is_not_enough_history(shape, predicts):
    frame, frequency = _small(shape)
    feature_frame, manifest = features.build_features(frame, frequency)
    horizon = 8 if frequency == "W" else 14
    if not predicts:
        with pytest.raises(model.InsufficientHistory):
            model.train(feature_frame, manifest, horizon)
        return
    forecast = model.forecast(model.train(feature_frame, manifest, horizon), feature_frame, horizon)
    assert len(forecast) == horizon and forecast["prediction"].ge(0).all()


def test_nothing_sold_is_not_enough_history():
    frame, frequency = _small("nothing sold")
    with pytest.raises(model.InsufficientHistory, match="nothing was sold"):
        model.train(*features.build_features(frame, frequency), horizon=14)


# -- issue 13: monthly data, level scaling, plans, intervals, additive sums ----------------------


def test_price_and_promotion_are_inputs_only_when_declared_known_in_advance():
    undeclared = features.feature_names("D", [])
    assert not {"unit_price", "price_ratio", "price_change", "promotion"} & set(undeclared)
    assert "promotion" in features.feature_names("D", ["promotion"]) and "unit_price" not in features.feature_names(
        "D", ["promotion"]
    )
    _, manifest = feature_set(known_in_advance=(), items=2, stores=1, periods=120, seed=1)
    assert manifest["features"] == undeclared and manifest["known_in_advance"] == []


def monthly_feature_set(periods=48, series=6, seed=3, **kwargs):
    from lambda_build.accuracy_corpus import generate

    frame = generate(frequency="M", series=series, periods=periods, seed=seed, start="2020-01-01", level=(4.0, 0.5), **kwargs)
    return features.build_features(frame, "M")


def test_monthly_seasonal_naive_steps_back_twelve_months():
    dates = pd.date_range("2023-01-01", periods=14, freq="MS")
    history = pd.DataFrame({"item_id": "A", "store_id": "S", "date": dates, "quantity": np.arange(14.0)})
    targets = pd.DataFrame({"item_id": "A", "store_id": "S", "date": pd.date_range("2024-03-01", periods=13, freq="MS")})
    predicted = model.seasonal_naive(history, targets, "M")
    assert list(predicted) == [2.0, 3.0, *np.arange(4.0, 14.0), 2.0]  # 2024-03 <- 2023-03, ..., 2025-03 <- 2023-03


def test_monthly_data_trains_backtests_and_forecasts_month_starts():
    frame, manifest = monthly_feature_set()
    bundle = model.train(frame, manifest, horizon=6)
    metrics = bundle.metadata["metrics"]
    assert metrics["season_length"] == 12 and metrics["cutoff"] == "2023-07-01"
    forecast = model.forecast(bundle, frame, 6)
    assert set(forecast["date"].dt.strftime("%Y-%m-%d")) == {f"2024-{m:02d}-01" for m in range(1, 7)}


def test_level_scaling_carries_a_trend_beyond_the_largest_quantity_seen():
    dates = pd.date_range("2020-01-01", periods=120, freq="MS").strftime("%Y-%m-%d")
    rows = [
        pd.DataFrame(
            {
                "date": dates,
                "item_id": f"I{i}",
                "store_id": "S",
                "quantity": (10 + i) * 1.03 ** np.arange(120),
                "unit_price": 1.0,
                "promotion": 0,
            }
        )
        for i in range(3)
    ]
    frame, manifest = features.build_features(pd.concat(rows, ignore_index=True), "M")
    fitted = model.fit(frame, manifest["features"])
    forecast = model.recursive_forecast(fitted.estimator, frame, 6, "M", manifest["codes"], fitted.names)
    largest = frame.groupby("item_id")["quantity"].max()
    assert (forecast.groupby("item_id")["prediction"].max() > largest * 1.05).all()  # raw trees stop at the largest


def test_a_plan_sets_future_prices_and_promotions_and_the_forecast_says_whose():
    frame, manifest = feature_set(items=4, stores=2, periods=300, seed=3)  # enough promotions to learn from
    bundle = model.train(frame, manifest, horizon=7)
    assumed = model.forecast(bundle, frame, 7)
    assert assumed.attrs["plan"] == model.PLAN_ASSUMED
    first = assumed[["date", "item_id", "store_id"]].iloc[:3]
    plan = first.assign(promotion=1, unit_price=frame["unit_price"].iloc[-1] * 0.5)
    planned = model.forecast(bundle, frame, 7, plan=plan)
    assert planned.attrs["plan"] == model.PLAN_FILE
    changed = ~np.isclose(planned["prediction"].to_numpy(), assumed["prediction"].to_numpy(), rtol=1e-9)
    assert changed[:3].all() and not changed[7:].any()  # the first series' first 3 days; the others as assumed
    assert planned["prediction"].iloc[:3].gt(assumed["prediction"].iloc[:3]).all()
    base = features.sort_grid(frame[features.BASE_COLUMNS])
    future = features.sort_grid(model.future_periods(base, 7, "D", plan))
    assert future["promotion"].tolist()[:3] == [1, 1, 1] and future["promotion"].iloc[3:].eq(0).all()


def test_the_backtest_plans_the_holdout_with_its_recorded_values_when_declared_known():
    frame, manifest = feature_set(items=4, stores=2, periods=300, seed=2)
    unknown = model.backtest(frame, {**manifest, "known_in_advance": []}, 14)  # the same features, the plan assumed
    known = model.backtest(frame, manifest, 14)
    assert known["known_in_advance"] == ["unit_price", "promotion"] and unknown["known_in_advance"] == []
    assert known["model"]["mae"] < unknown["model"]["mae"]  # promotions lift the holdout: knowing them helps


def test_intervals_bracket_the_prediction_and_the_backtest_reports_their_coverage():
    frame, manifest = feature_set(items=4, stores=2, periods=400, seed=1)
    bundle = model.train(frame, manifest, horizon=14)
    metrics = bundle.metadata["metrics"]
    assert 0.7 <= metrics["coverage_p10_p90"] <= 0.9 and metrics["model"]["coverage_p10_p90"] == metrics["coverage_p10_p90"]
    forecast = model.forecast(bundle, frame, 14)
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["p50"] == forecast["prediction"]).all() and (forecast["p10"] >= 0).all()
    assert (forecast["p90"] > forecast["p10"]).mean() > 0.9


def test_interval_table_takes_error_quantiles_per_prediction_bin():
    predicted = np.repeat([1.0, 100.0], 100)
    errors = np.concatenate([np.linspace(-1, 1, 100), np.linspace(-50, 50, 100)])
    table = model.interval_table(predicted, predicted + errors)
    low, high = model.apply_intervals(table, np.array([1.0, 100.0]))
    assert high[1] - low[1] > 30 * (high[0] - low[0])  # wide where errors are wide
    assert low[0] >= 0
    p10, p90 = model.apply_intervals(table, predicted)
    inside = (predicted + errors >= p10) & (predicted + errors <= p90)
    assert inside.mean() == pytest.approx(0.8, abs=0.03)


def test_backtest_sums_add_up_to_its_metrics():
    frame, manifest = feature_set(items=3, stores=2, periods=300, seed=6)
    result = model.backtest(frame, manifest, 14)
    sums = result["sums"]
    assert sums["count"] == result["holdout_rows"]
    assert result["model"]["mae"] == pytest.approx(sums["abs_error"] / sums["count"], abs=1e-6)
    assert result["model"]["wape"] == pytest.approx(sums["abs_error"] / sums["actual"], abs=1e-6)
    assert result["seasonal_naive"]["mae"] == pytest.approx(sums["naive_abs_error"] / sums["count"], abs=1e-6)
    assert result["coverage_p10_p90"] == pytest.approx(sums["inside_p10_p90"] / sums["count"], abs=1e-4)


def test_weighted_bins_computed_here_build_the_trees_scikit_learn_builds(monkeypatch):
    """At or under scikit-learn's binning subsample a fit's bin edges are computed here, all
    percentiles at once (scikit-learn 1.9 sorts each column once per percentile): the model must
    predict exactly what the same fit binned by scikit-learn itself predicts, on rows it was
    fitted on and on rows it was not."""
    frame, manifest = feature_set(items=5, stores=3, periods=400, seed=7)
    _, train, holdout = model.holdout_split(frame, "D", 14)
    ours = model.fit(train, manifest["features"])
    assert ours.estimator.bins_, "columns with more than 255 distinct values are binned here"
    assert any(train[name].isna().any() for name in ours.estimator.bins_), "missing values stay missing"
    monkeypatch.setattr(model, "BINNING_SUBSAMPLE", 0)  # scikit-learn bins every column itself
    theirs = model.fit(train, manifest["features"])
    assert theirs.estimator.bins_ == {}
    for rows in (train, holdout):
        assert np.array_equal(ours.estimator.predict(rows[ours.names]), theirs.estimator.predict(rows[theirs.names]))


def test_a_model_saved_before_binning_here_predicts_as_it_did(monkeypatch):
    monkeypatch.setattr(model, "BINNING_SUBSAMPLE", 0)  # fitted as before: scikit-learn bins raw values
    frame, manifest = feature_set(items=2, stores=2, periods=200, seed=3)
    fitted = model.fit(frame, manifest["features"])
    expected = fitted.estimator.predict(frame[fitted.names])
    del fitted.estimator.bins_  # a bundle pickled by the previous version has no bins_
    assert np.array_equal(fitted.estimator.predict(frame[fitted.names]), expected)


@pytest.mark.parametrize("subsample", [model.BINNING_SUBSAMPLE, 0], ids=["binned here", "binned by scikit-learn"])
def test_predict_on_arrays_gives_what_the_fitted_inputs_give(monkeypatch, subsample):
    """The recursive forecast hands the model {name: array} per step (no frame built): its
    predictions must be those of the inputs as fit builds them (scaled, log level, binned)."""
    monkeypatch.setattr(model, "BINNING_SUBSAMPLE", subsample)
    frame, manifest = feature_set(items=5, stores=3, periods=400, seed=7)
    _, train, holdout = model.holdout_split(frame, "D", 14)
    estimator = model.fit(train, manifest["features"]).estimator
    rows = holdout[list(estimator.feature_names_in_)]
    level = estimator._level(rows)
    expected = estimator.estimator.predict(to_bins(estimator._inputs(rows, level), estimator.bins_).to_numpy()) * level
    assert np.array_equal(estimator.predict(rows), expected)
    assert np.array_equal(estimator.predict({name: rows[name].to_numpy() for name in rows.columns}), expected)
