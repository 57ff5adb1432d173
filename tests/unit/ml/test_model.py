"""The model against its baseline, the baseline itself, forecasts and the saved bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features
from item_prediction.ml import model
from lambda_build.sample_data import generate_sales


def feature_set(**kwargs):
    sample = generate_sales(invalid=False, **kwargs)
    return features.build_features(sample.frame, kwargs.get("frequency", "D"))


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


@pytest.mark.parametrize("signal", [True, False])
def test_the_backtest_report_matches_an_independent_recomputation(signal):
    """The reported numbers are what scoring the holdout by hand gives: the baseline with a
    plain loop (not model.seasonal_naive), the model from a fresh fit on the same cut."""
    frame, manifest = feature_set(items=2, stores=2, periods=200, seed=5, signal=signal)
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
    frame, manifest = features.build_features(sample.frame.drop(columns=["unit_price"]), "W")
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


def test_each_fit_decides_from_its_own_rows():
    """60 weeks: the backtest trains on 52, where a 52-week lag is always missing; the final fit
    has 8 weeks with one and uses it."""
    frame, manifest = feature_set(items=1, stores=1, periods=60, frequency="W", seed=3)
    bundle = model.train(frame, manifest, horizon=8)
    assert bundle.metadata["metrics"]["features_dropped"]["lag_52"] == "all missing"
    assert "lag_52" in bundle.feature_names and "lag_52" not in bundle.metadata["features_dropped"]
    assert bundle.metadata["features_dropped"]["series_code"] == "constant"  # one series


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
    frame, manifest = feature_set(items=2, stores=2, periods=150, seed=7)
    fitted = model.fit(frame, manifest["features"])
    assert fitted.dropped == {"year": "constant"}  # 150 days of 2023
    everything = model.HistGradientBoostingRegressor(**model.MODEL_PARAMS).fit(frame[manifest["features"]], frame["quantity"])
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
