"""FeatureEngineering: from validated rows to a model-ready feature set, with no future leakage.

Each series (item x store) is put on a regular time grid at its frequency, so that gaps become
explicit rows (``is_gap = 1``, quantity 0: a period with no recorded sale). Features at period t
only ever use quantities up to t-1: lags are shifts, rolling statistics are computed over the
shifted series, and the series' running mean is an expanding mean of the shifted series. Price,
promotion and calendar are known for the period itself (they are planned, not observed).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from . import schema

FEATURES_VERSION = "1.0"
LAGS = {"D": (1, 2, 3, 7, 14, 28), "W": (1, 2, 4, 8, 13, 52)}
WINDOWS = {"D": (7, 28), "W": (4, 13)}
CALENDAR = ("day_of_week", "day_of_month", "week_of_year", "month", "quarter", "year", "day_of_year_sin", "day_of_year_cos", "is_weekend")
PRICE_PROMO = ("unit_price", "price_ratio", "price_change", "promotion")
ENCODINGS = ("series_code", "item_code", "store_code", "series_mean_to_date")
KEY_COLUMNS = (schema.DATE, schema.ITEM, schema.STORE)
TARGET = schema.QUANTITY


def history_needed(frequency: str) -> int:
    """Periods of history that features at one period look back on."""
    return max(max(LAGS[frequency]), max(WINDOWS[frequency]) + 1)


def feature_names(frequency: str) -> list[str]:
    lags = [f"lag_{k}" for k in LAGS[frequency]]
    windows = [f"rolling_{stat}_{w}" for w in WINDOWS[frequency] for stat in ("mean", "std")]
    return [*lags, *windows, *CALENDAR, *PRICE_PROMO, "is_gap", *ENCODINGS]


def grid_freq(frequency: str, dates: pd.Series) -> str:
    if frequency == "D":
        return "D"
    weekday = pd.to_datetime(dates).dt.day_of_week.mode().iloc[0]
    return f"W-{('MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN')[weekday]}"


def regular_grid(clean: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """One row per series and period from its first to its last period; gaps flagged and zero-filled."""
    frame = clean.copy()
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    freq = grid_freq(frequency, frame[schema.DATE])
    if frequency == "W":  # align every date on the series' weekly anchor, summing what shares a week
        frame[schema.DATE] = frame[schema.DATE].dt.to_period(freq).dt.end_time.dt.normalize()
        frame = frame.groupby([schema.ITEM, schema.STORE, schema.DATE], as_index=False).agg(
            {schema.QUANTITY: "sum", schema.PRICE: "mean", schema.PROMOTION: "max"}
        )
    pieces = []
    for (item, store), series in frame.groupby([schema.ITEM, schema.STORE], sort=True):
        series = series.set_index(schema.DATE).sort_index()
        index = pd.date_range(series.index.min(), series.index.max(), freq=freq, name=schema.DATE)
        series = series.reindex(index)
        series[schema.ITEM], series[schema.STORE] = item, store
        pieces.append(series.reset_index())
    grid = pd.concat(pieces, ignore_index=True) if pieces else frame.iloc[0:0]
    grid["is_gap"] = grid[schema.QUANTITY].isna().astype("int8")
    grid[schema.QUANTITY] = grid[schema.QUANTITY].fillna(0.0).astype(float)
    grid[schema.PRICE] = grid.groupby([schema.ITEM, schema.STORE])[schema.PRICE].transform(lambda s: s.ffill().bfill())
    grid[schema.PROMOTION] = grid[schema.PROMOTION].fillna(0).astype("int8")
    return grid[[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY, schema.PRICE, schema.PROMOTION, "is_gap"]]


def add_calendar(frame: pd.DataFrame) -> pd.DataFrame:
    dates = frame[schema.DATE].dt
    day_of_year = dates.day_of_year.to_numpy()
    frame["day_of_week"] = dates.day_of_week.astype("int8")
    frame["day_of_month"] = dates.day.astype("int8")
    frame["week_of_year"] = dates.isocalendar().week.astype("int16").to_numpy()
    frame["month"] = dates.month.astype("int8")
    frame["quarter"] = dates.quarter.astype("int8")
    frame["year"] = dates.year.astype("int16")
    frame["day_of_year_sin"] = np.sin(2 * np.pi * day_of_year / 365.25)
    frame["day_of_year_cos"] = np.cos(2 * np.pi * day_of_year / 365.25)
    frame["is_weekend"] = (frame["day_of_week"] >= 5).astype("int8")
    return frame


def add_history(frame: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Lags, rolling statistics and the running mean, all from periods strictly before each row."""
    grouped = frame.groupby([schema.ITEM, schema.STORE], sort=False)[TARGET]
    for k in LAGS[frequency]:
        frame[f"lag_{k}"] = grouped.shift(k)
    previous = grouped.shift(1)
    by_series = previous.groupby([frame[schema.ITEM], frame[schema.STORE]], sort=False)
    for window in WINDOWS[frequency]:
        frame[f"rolling_mean_{window}"] = by_series.transform(lambda s, w=window: s.rolling(w, min_periods=1).mean())
        frame[f"rolling_std_{window}"] = by_series.transform(lambda s, w=window: s.rolling(w, min_periods=2).std())
    frame["series_mean_to_date"] = by_series.transform(lambda s: s.expanding().mean())
    return frame


def add_price_and_promotion(frame: pd.DataFrame) -> pd.DataFrame:
    series = frame.groupby([schema.ITEM, schema.STORE], sort=False)[schema.PRICE]
    median = series.transform("median")
    frame["price_ratio"] = frame[schema.PRICE] / median
    frame["price_change"] = series.pct_change(fill_method=None).fillna(0.0)
    return frame


def add_encodings(frame: pd.DataFrame, codes: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Ordinal codes from a fixed vocabulary (kept in the manifest, so forecasts encode alike)."""
    series_key = frame[schema.ITEM] + "|" + frame[schema.STORE]
    frame["series_code"] = series_key.map(codes["series"]).fillna(-1).astype("int32")
    frame["item_code"] = frame[schema.ITEM].map(codes["item"]).fillna(-1).astype("int32")
    frame["store_code"] = frame[schema.STORE].map(codes["store"]).fillna(-1).astype("int32")
    return frame


def vocabulary(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    series = sorted(set(frame[schema.ITEM] + "|" + frame[schema.STORE]))
    return {
        "series": {key: code for code, key in enumerate(series)},
        "item": {key: code for code, key in enumerate(sorted(frame[schema.ITEM].unique()))},
        "store": {key: code for code, key in enumerate(sorted(frame[schema.STORE].unique()))},
    }


def compute_features(grid: pd.DataFrame, frequency: str, codes: dict[str, dict[str, int]]) -> pd.DataFrame:
    """All feature families on a regular grid (sorted by series, then date)."""
    frame = grid.sort_values([schema.ITEM, schema.STORE, schema.DATE]).reset_index(drop=True)
    frame = add_calendar(frame)
    frame = add_history(frame, frequency)
    frame = add_price_and_promotion(frame)
    frame = add_encodings(frame, codes)
    return frame


def build_features(clean: pd.DataFrame, frequency: str, *, source_fingerprint: str = "") -> tuple[pd.DataFrame, dict]:
    """The feature set and its manifest for validated rows at ``frequency`` (``D`` or ``W``)."""
    if clean.empty:
        raise ValueError("no validated rows to build features from")
    frame = clean.copy()
    frame[schema.ITEM] = frame[schema.ITEM].astype(str)
    frame[schema.STORE] = frame[schema.STORE].fillna(schema.NO_STORE).astype(str)
    grid = regular_grid(frame, frequency)
    codes = vocabulary(grid)
    features = compute_features(grid, frequency, codes)
    names = feature_names(frequency)
    manifest = {
        "version": FEATURES_VERSION,
        "frequency": frequency,
        "grid_freq": grid_freq(frequency, grid[schema.DATE]),
        "features": names,
        "target": TARGET,
        "keys": list(KEY_COLUMNS),
        "rows": len(features),
        "series": len(codes["series"]),
        "gaps": int(features["is_gap"].sum()),
        "date_range": [features[schema.DATE].min().strftime("%Y-%m-%d"), features[schema.DATE].max().strftime("%Y-%m-%d")],
        "codes": codes,
        "source_fingerprint": source_fingerprint or fingerprint(clean),
    }
    return features, manifest


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame, independent of row order."""
    hashed = pd.util.hash_pandas_object(frame.sort_values(list(frame.columns[:3])).reset_index(drop=True), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()
