"""The model against its baseline, the baseline itself, forecasts and the saved bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from item_prediction import features, model
from item_prediction.sample_data import generate_sales


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
        pd.DataFrame({"date": pd.date_range("2024-01-01", periods=21).strftime("%Y-%m-%d"), "item_id": "A", "store_id": "S",
                      "quantity": values, "unit_price": 1.0, "promotion": 0}), "D")  # fmt: skip
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
    assert bundle.metadata["libraries"]["scikit-learn"] and bundle.metadata["training_fingerprint"] == manifest["source_fingerprint"]
    assert bundle.metadata["version"] == model.model_version(manifest)


def test_backtest_needs_history():
    frame, manifest = feature_set(items=1, stores=1, periods=10, seed=0)
    with pytest.raises(ValueError, match="not enough history"):
        model.backtest(frame, manifest, horizon=14)
