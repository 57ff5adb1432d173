"""Every feature family, and the promise that no feature sees the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features
from lambda_build.sample_data import generate_sales


def daily(values, start="2024-01-01", item="A", store="S1", price=2.0):
    dates = pd.date_range(start, periods=len(values), freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame(
        {"date": dates, "item_id": item, "store_id": store, "quantity": values, "unit_price": price, "promotion": 0}
    )


def test_gaps_become_explicit_zero_rows():
    frame = daily([1.0, 2.0, 3.0, 4.0]).drop(index=[1, 2])
    grid = features.regular_grid(frame, "D")
    assert list(grid["quantity"]) == [1.0, 0.0, 0.0, 4.0]
    assert list(grid["is_gap"]) == [0, 1, 1, 0]
    assert grid["unit_price"].notna().all()


def test_calendar_features():
    frame, _ = features.build_features(daily([1.0] * 3, start="2024-03-01"), "D")
    assert list(frame["day_of_week"]) == [4, 5, 6] and list(frame["day_of_month"]) == [1, 2, 3]
    assert list(frame["month"]) == [3, 3, 3]
    np.testing.assert_allclose(frame["day_of_year_sin"], np.sin(2 * np.pi * np.array([61, 62, 63]) / 365.25))
    # only the frequency's calendar: no column the model does not use
    assert not {"quarter", "year", "week_of_year", "is_weekend", "days_in_month"} & set(frame.columns)


def test_lags_and_rolling_use_only_the_past():
    values = list(np.arange(40, dtype=float))
    frame, _ = features.build_features(daily(values), "D")
    row = frame.iloc[30]
    assert row["lag_1"] == 29 and row["lag_7"] == 23 and row["lag_28"] == 2
    assert row["rolling_mean_7"] == np.mean(values[23:30])
    assert row["series_mean_to_date"] == np.mean(values[:30])
    assert np.isnan(frame.iloc[0]["lag_1"])


@pytest.mark.parametrize("frequency", ["D", "W"])
def test_changing_the_future_changes_no_past_feature(frequency):
    """Quantities, prices and promotions after a cutoff are rewritten: no feature before it moves."""
    sample = generate_sales(items=2, stores=2, periods=120, frequency=frequency, seed=2, invalid=False)
    base, manifest = features.build_features(sample.frame, frequency)
    cutoff = sorted(sample.frame["date"].unique())[80]
    altered = sample.frame.copy()
    future = altered["date"] > cutoff
    altered.loc[future, "quantity"] = altered.loc[future, "quantity"] * 100 + 7
    altered.loc[future, "unit_price"] = altered.loc[future, "unit_price"] * 3
    altered.loc[future, "promotion"] = 1 - altered.loc[future, "promotion"]
    altered = altered[~(future & (altered.index % 5 == 0))]  # and some future records vanish (gaps)
    other, _ = features.build_features(altered, frequency)
    keys = ["item_id", "store_id", "date"]
    columns = keys + features.feature_names(frequency)  # every feature, declared known in advance or not
    before = base.loc[base["date"] <= pd.Timestamp(cutoff), columns].reset_index(drop=True)
    after = other.loc[other["date"] <= pd.Timestamp(cutoff), columns].reset_index(drop=True)
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, after)
    # The test can tell a change: features after the cutoff did move.
    later = base[columns].merge(other[columns], on=keys, suffixes=("", "_altered"))
    later = later[later["date"] > pd.Timestamp(cutoff)]
    assert (later["lag_1"] != later["lag_1_altered"]).any() and (later["price_ratio"] != later["price_ratio_altered"]).any()


def test_price_and_promotion_features():
    frame = daily([5.0] * 4, price=2.0)
    frame.loc[2:, "unit_price"] = 3.0
    frame.loc[3, "promotion"] = 1
    result, _ = features.build_features(frame, "D")
    assert list(result["price_change"].round(3)) == [0.0, 0.0, 0.5, 0.0]
    # against the median price of the series up to and including each period: 2, 2, 2, 2.5
    assert list(result["price_ratio"].round(3)) == [1.0, 1.0, 1.5, 1.2]
    assert list(result["promotion"]) == [0, 0, 0, 1]


def test_series_encodings_are_stable_and_in_the_manifest():
    frame = pd.concat([daily([1.0] * 3, item="B"), daily([1.0] * 3, item="A", store="S2")])
    result, manifest = features.build_features(frame, "D")
    assert manifest["codes"]["series"] == {"A|S2": 0, "B|S1": 1}
    assert manifest["codes"]["item"] == {"A": 0, "B": 1} and manifest["codes"]["store"] == {"S1": 0, "S2": 1}
    assert set(result.loc[result["item_id"] == "B", "item_code"]) == {1} and set(
        result.loc[result["item_id"] == "A", "store_code"]
    ) == {1}
    assert manifest["series"] == 2 and set(manifest["features"]) <= set(result.columns)


def test_weekly_data_uses_weekly_lags():
    sample = generate_sales(items=1, stores=1, periods=60, frequency="W", seed=1, invalid=False, gap_rate=0)
    result, manifest = features.build_features(sample.frame, "W")
    assert manifest["frequency"] == "W" and "lag_52" in manifest["features"] and "lag_7" not in manifest["features"]
    assert (result["date"].diff().dropna() == pd.Timedelta(days=7)).all()
    assert result.iloc[55]["lag_52"] == result.iloc[3]["quantity"]


def test_gap_share_counts_missing_periods_before_each_row():
    frame = daily([1.0] * 10).drop(index=[2, 3])
    result, manifest = features.build_features(frame, "D")
    assert "is_gap" not in manifest["features"], "whether a period has a record is known only afterwards"
    assert list(result["is_gap"]) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(result["gap_share_28"].iloc[:6], [np.nan, 0.0, 0.0, 1 / 3, 2 / 4, 2 / 5])


def test_history_features_on_a_tail_with_running_totals_match_the_full_history():
    """What the recursive forecast relies on: a tail plus prior totals gives the same features."""
    sample = generate_sales(items=2, stores=2, periods=90, seed=3, invalid=False)
    grid = features.regular_grid(sample.frame, "D")
    full = features.add_history(features.sort_grid(grid), "D")
    position = full.groupby(["item_id", "store_id"]).cumcount(ascending=False)
    tail = position < features.history_needed("D") + 5
    prior = features.running_totals(features.sort_grid(grid)[~tail.to_numpy()])
    partial = features.add_history(features.sort_grid(grid)[tail.to_numpy()].reset_index(drop=True), "D", prior)
    last = position[tail] < 5  # rows with a full look-back inside the tail
    names = features.history_feature_names("D")
    np.testing.assert_allclose(
        partial.loc[last.to_numpy(), names].to_numpy(float), full.loc[tail & (position < 5), names].to_numpy(float), rtol=1e-9
    )


def test_weekly_records_in_one_week_are_summed_on_the_datasets_weekday():
    frame = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-03", "2024-01-08", "2024-01-22"],
            "item_id": "A",
            "store_id": "S",
            "quantity": [1.0, 2.0, 4.0, 8.0],
            "unit_price": 1.0,
            "promotion": 0,
        }
    )
    grid = features.regular_grid(frame, "W")
    # Weeks start on the usual weekday (Monday here): Wednesday the 3rd is in the week of the 1st.
    assert list(grid["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]
    assert list(grid["quantity"]) == [3.0, 4.0, 0.0, 8.0]
    assert list(grid["is_gap"]) == [0, 0, 1, 0]


def test_no_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="no validated rows"):
        features.build_features(daily([]).iloc[0:0], "D")


@pytest.mark.parametrize(("window", "stat", "min_periods"), [(7, "mean", 1), (28, "mean", 1), (7, "std", 2), (28, "std", 2)])
def test_fast_rolling_equals_a_rolling_window_per_series(window, stat, min_periods):
    sample = generate_sales(items=5, stores=3, periods=100, seed=1, invalid=False, gap_rate=0.1)
    grid = features.sort_grid(features.regular_grid(sample.frame, "D"))
    previous = grid.groupby(["item_id", "store_id"], sort=False)["quantity"].shift(1)
    runs = features.Runs(features.series_starts(grid))
    np.testing.assert_array_equal(runs.shift(grid["quantity"].to_numpy(), 1), previous.to_numpy())
    fast = features._rolling(previous, runs, window, stat, min_periods)
    grouped = previous.groupby([grid["item_id"], grid["store_id"]], sort=False).rolling(window, min_periods=min_periods)
    slow = getattr(grouped, stat)().reset_index(level=[0, 1], drop=True).reindex(grid.index)
    assert slow.notna().sum() > 1000
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_the_source_fingerprint_follows_content_not_order():
    sample = generate_sales(items=2, stores=2, periods=30, seed=4, invalid=False)
    shuffled = sample.frame.sample(frac=1.0, random_state=1)
    assert features.fingerprint(sample.frame) == features.fingerprint(shuffled)
    changed = sample.frame.copy()
    changed.loc[5, "quantity"] += 1
    assert features.fingerprint(changed) != features.fingerprint(sample.frame)
    typed = sample.frame.assign(date=pd.to_datetime(sample.frame["date"]), promotion=sample.frame["promotion"].astype("int8"))
    assert features.fingerprint(typed) == features.fingerprint(sample.frame)


# -- monthly data (issue 13.4) -----------------------------------------------------------------


def monthly(values, dates, item="A"):
    return pd.DataFrame({"date": dates, "item_id": item, "store_id": "S1", "quantity": values, "unit_price": 2.0, "promotion": 0})


def test_monthly_rows_land_on_month_starts_whatever_day_they_are_dated():
    frame = monthly([1.0, 2.0, 3.0, 4.0], ["2023-11-30", "2023-12-31", "2024-02-29", "2024-02-10"])
    grid = features.regular_grid(frame, "M")
    assert list(grid["date"].dt.strftime("%Y-%m-%d")) == ["2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
    assert list(grid["quantity"]) == [1.0, 2.0, 0.0, 7.0]  # January missing: a gap; two February rows summed
    assert list(grid["is_gap"]) == [0, 0, 1, 0]


def test_monthly_features_use_months():
    dates = pd.date_range("2022-01-01", periods=30, freq="MS").strftime("%Y-%m-%d")
    frame, manifest = features.build_features(monthly(np.arange(30.0), dates), "M")
    assert manifest["grid_freq"] == "MS" and "days_in_month" in manifest["features"]
    row = frame.iloc[25]  # 2024-02
    assert row["lag_1"] == 24 and row["lag_12"] == 13 and row["rolling_mean_3"] == np.mean([22, 23, 24])
    assert row["month"] == 2 and row["days_in_month"] == 29
    assert features.history_needed("M") == 13


def test_period_numbers_count_periods_and_invert():
    dates = pd.Series(pd.to_datetime(["2024-01-03", "2024-01-10", "2024-03-06"]))  # Wednesdays
    numbers = features.period_number(dates, "W")
    assert list(numbers - numbers[0]) == [0, 1, 9]
    assert list(pd.DatetimeIndex(features.period_dates(numbers, "W", dates.iloc[0]))) == list(dates)
    months = features.period_number(pd.Series(pd.to_datetime(["1970-01-01", "2024-03-01"])), "M")
    assert list(months) == [0, 54 * 12 + 2]
    assert pd.Timestamp(features.period_dates(months, "M", None)[1]) == pd.Timestamp("2024-03-01")


def test_known_in_advance_goes_into_the_manifest_in_canonical_order():
    _, manifest = features.build_features(daily([1.0] * 3), "D", known_in_advance=["promotion", "unit_price"])
    assert manifest["known_in_advance"] == ["unit_price", "promotion"]
    assert features.build_features(daily([1.0] * 3), "D")[1]["known_in_advance"] == []


def test_series_ids_of_a_grid_match_grouping_by_the_keys():
    sample = generate_sales(items=5, stores=3, periods=40, frequency="D", seed=4, invalid=False)
    frame, _ = features.build_features(sample.frame, "D")
    expected = frame.groupby(["item_id", "store_id"], sort=False).ngroup().to_numpy()
    np.testing.assert_array_equal(features.series_ids(frame), expected)
    # an item id shared by two stores and a store shared by two items are still two series each
    pairs = pd.DataFrame({"item_id": ["A", "A", "B", "B"], "store_id": ["S1", "S2", "S2", "S2"]})
    assert list(features.series_ids(pairs)) == [0, 1, 2, 2]


def windowed_rows(clean: pd.DataFrame, prior: pd.DataFrame, since: str) -> pd.DataFrame:
    """The rows a predict-mode build reads: each series' from its cut on (a new series': from ``since``)."""
    cuts = prior.set_index(["item_id", "store_id"])["cut"].dt.strftime("%Y-%m-%d")
    keys = pd.MultiIndex.from_frame(clean[["item_id", "store_id"]])
    return clean[clean["date"] >= cuts.reindex(keys).fillna(since).to_numpy()]


@pytest.mark.parametrize("frequency", ["D", "W"])
def test_a_window_with_the_prior_gives_the_full_historys_features_where_forecasts_start(frequency):
    """The incremental build: the prior of the model's history plus each series' rows from its cut
    give, on each series' last row, every feature a full-history build gives, for every series
    (one whose last row is before the window, one with a gap across the cut, one new)."""
    periods = 120 if frequency == "D" else 200
    sample = generate_sales(items=3, stores=2, periods=periods, seed=4, frequency=frequency, invalid=False).frame
    days = sorted(sample["date"].unique())
    trained_end, since_index = days[-8], len(days) - 8 - features.history_needed(frequency)
    dormant = (sample["item_id"] == "ITEM-001") & (sample["store_id"] == "STORE-01")
    sample = sample[~dormant | (sample["date"] < days[since_index - 10])]  # ends before the window
    gapped = (sample["item_id"] == "ITEM-002") & (sample["store_id"] == "STORE-02")
    sample = sample[~gapped | ~sample["date"].isin(days[since_index - 3 : since_index + 4])]  # no rows across the cut
    new = pd.DataFrame({"date": days[-3:], "item_id": "NEW", "store_id": "STORE-01", "quantity": 2.0, "unit_price": 1.5})
    sample = pd.concat([sample, new.assign(promotion=0)], ignore_index=True)
    known = ("unit_price", "promotion")

    trained, manifest = features.build_features(sample[sample["date"] <= trained_end], frequency, known_in_advance=known)
    since = days[since_index]
    prior = features.prior_table(trained, since, frequency)
    full, _ = features.build_features(sample, frequency, known_in_advance=known)
    window, windowed_manifest = features.build_features(
        windowed_rows(sample, prior, since), frequency, known_in_advance=known, prior=prior
    )

    names = features.feature_names(frequency, known)
    last = lambda frame: frame.groupby(["item_id", "store_id"]).tail(1).set_index(["item_id", "store_id"]).sort_index()  # noqa: E731
    assert list(last(window).index) == list(last(full).index), "the same series, the dormant and the new one included"
    expected, got = last(full), last(window)
    old = expected.index != ("NEW", "STORE-01")  # a series the model never saw is encoded -1, the model's way
    pd.testing.assert_frame_equal(got.loc[old, names], expected.loc[old, names], check_dtype=False, rtol=1e-9)
    assert got.loc[("NEW", "STORE-01"), "item_code"] == -1
    assert windowed_manifest["codes"] == manifest["codes"] and len(window) < len(full) / 2

    # A predict run's window keeps only the forecast's inputs: the same grid, the same manifest.
    inputs, inputs_manifest = features.build_features(
        windowed_rows(sample, prior, since), frequency, known_in_advance=known, prior=prior, inputs_only=True
    )
    pd.testing.assert_frame_equal(inputs, window[features.BASE_COLUMNS], check_exact=True)
    assert inputs_manifest == {**windowed_manifest, "inputs_only": True}


KEY_DTYPES = [object, str, pd.StringDtype("python")]  # str: pyarrow's where installed; python: the layers'


@pytest.mark.parametrize("keys", KEY_DTYPES)
def test_series_starts_are_where_the_keys_change_whatever_their_dtype(keys):
    grid = features.regular_grid(generate_sales(items=4, stores=3, periods=9, seed=2, invalid=False).frame, "D")
    grid = features.sort_grid(grid).astype({"item_id": keys, "store_id": keys})
    pair = grid["item_id"].astype(object) + "|" + grid["store_id"].astype(object)
    expected = (pair != pair.shift()).to_numpy()
    np.testing.assert_array_equal(features.series_starts(grid), expected)
    assert expected.sum() == 12


@pytest.mark.parametrize("keys", KEY_DTYPES)
def test_sort_grid_sorts_any_disorder_and_passes_a_sorted_grid_through(keys):
    """A sorted grid is not sorted again (a check of neighbours instead): every kind of disorder
    (items, stores within an item, dates within a series) is still found and sorted."""
    grid = features.regular_grid(generate_sales(items=3, stores=2, periods=20, seed=1, invalid=False).frame, "D")
    grid = grid.astype({"item_id": keys, "store_id": keys})
    expected = grid.sort_values(["item_id", "store_id", "date"], kind="stable").reset_index(drop=True)
    swap = lambda frame, a, b: frame.iloc[[b if i == a else a if i == b else i for i in range(len(frame))]]  # noqa: E731
    sorted_grid = features.sort_grid(grid)
    pd.testing.assert_frame_equal(sorted_grid, expected)
    for a, b in [(0, len(grid) - 1), (5, 25), (3, 4)]:  # items, stores of one item, dates of one series
        pd.testing.assert_frame_equal(features.sort_grid(swap(sorted_grid, a, b)), expected)
    same_day = sorted_grid.assign(date=sorted_grid["date"].where(sorted_grid.index != 4, sorted_grid["date"].shift(1)))
    assert (
        features.sort_grid(same_day.iloc[[0, 1, 2, 4, 3, *range(5, len(grid))]])["quantity"].iloc[3]
        == same_day["quantity"].iloc[4]
    )
