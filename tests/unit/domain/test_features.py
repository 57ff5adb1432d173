"""Every feature family, and the promise that no feature sees the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from item_prediction import features
from item_prediction.sample_data import generate_sales


def daily(values, start="2024-01-01", item="A", store="S1", price=2.0):
    dates = pd.date_range(start, periods=len(values), freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "item_id": item, "store_id": store, "quantity": values, "unit_price": price, "promotion": 0})


def test_gaps_become_explicit_zero_rows():
    frame = daily([1.0, 2.0, 3.0, 4.0]).drop(index=[1, 2])
    grid = features.regular_grid(frame, "D")
    assert list(grid["quantity"]) == [1.0, 0.0, 0.0, 4.0]
    assert list(grid["is_gap"]) == [0, 1, 1, 0]
    assert grid["unit_price"].notna().all()


def test_calendar_features():
    frame, _ = features.build_features(daily([1.0] * 3, start="2024-03-01"), "D")
    assert list(frame["day_of_week"]) == [4, 5, 6]
    assert list(frame["is_weekend"]) == [0, 1, 1]
    assert list(frame["month"]) == [3, 3, 3] and list(frame["quarter"]) == [1, 1, 1]
    assert list(frame["week_of_year"]) == [9, 9, 9]


def test_lags_and_rolling_use_only_the_past():
    values = list(np.arange(40, dtype=float))
    frame, _ = features.build_features(daily(values), "D")
    row = frame.iloc[30]
    assert row["lag_1"] == 29 and row["lag_7"] == 23 and row["lag_28"] == 2
    assert row["rolling_mean_7"] == np.mean(values[23:30])
    assert row["series_mean_to_date"] == np.mean(values[:30])
    assert np.isnan(frame.iloc[0]["lag_1"])


def test_changing_the_future_changes_no_past_feature():
    sample = generate_sales(items=2, stores=2, periods=120, seed=2, invalid=False)
    base, manifest = features.build_features(sample.frame, "D")
    cutoff = "2023-03-15"
    altered = sample.frame.copy()
    future = altered["date"] > cutoff
    altered.loc[future, "quantity"] = altered.loc[future, "quantity"] * 100 + 7
    other, _ = features.build_features(altered, "D")
    past = base["date"] <= pd.Timestamp(cutoff)
    columns = [name for name in manifest["features"]]
    pd.testing.assert_frame_equal(base.loc[past, columns].reset_index(drop=True), other.loc[past, columns].reset_index(drop=True))
    assert not base.loc[~past, "lag_1"].equals(other.loc[~past, "lag_1"])  # the test can tell a change


def test_price_and_promotion_features():
    frame = daily([5.0] * 4, price=2.0)
    frame.loc[2:, "unit_price"] = 3.0
    frame.loc[3, "promotion"] = 1
    result, _ = features.build_features(frame, "D")
    assert list(result["price_change"].round(3)) == [0.0, 0.0, 0.5, 0.0]
    assert list(result["price_ratio"].round(3)) == [0.8, 0.8, 1.2, 1.2]
    assert list(result["promotion"]) == [0, 0, 0, 1]


def test_series_encodings_are_stable_and_in_the_manifest():
    frame = pd.concat([daily([1.0] * 3, item="B"), daily([1.0] * 3, item="A", store="S2")])
    result, manifest = features.build_features(frame, "D")
    assert manifest["codes"]["series"] == {"A|S2": 0, "B|S1": 1}
    assert set(result.loc[result["item_id"] == "B", "series_code"]) == {1}
    assert manifest["series"] == 2 and set(manifest["features"]) <= set(result.columns)


def test_weekly_data_uses_weekly_lags():
    sample = generate_sales(items=1, stores=1, periods=60, frequency="W", seed=1, invalid=False, gap_rate=0)
    result, manifest = features.build_features(sample.frame, "W")
    assert manifest["frequency"] == "W" and "lag_52" in manifest["features"] and "lag_7" not in manifest["features"]
    assert (result["date"].diff().dropna() == pd.Timedelta(days=7)).all()
    assert result.iloc[55]["lag_52"] == result.iloc[3]["quantity"]


def test_no_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="no validated rows"):
        features.build_features(daily([]).iloc[0:0], "D")
