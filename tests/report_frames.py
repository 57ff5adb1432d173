"""Frames shaped as the report takes them (synthetic, seeded): weekly or daily history, a backtest
over its last ``horizon`` periods and a forecast after it, with or without a P10-P90 band."""

from __future__ import annotations

import numpy as np
import pandas as pd

ITEM, STORE, DATE, QUANTITY = "item_id", "store_id", "date", "quantity"


def report_frames(
    *,
    items: int = 4,
    stores: int = 2,
    periods: int = 120,
    horizon: int = 8,
    frequency: str = "W",
    band: bool = True,
    seed: int = 3,
):
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(weeks=1) if frequency == "W" else pd.Timedelta(days=1)
    start = pd.Timestamp("2023-01-02")
    dates = pd.DatetimeIndex([start + i * step for i in range(periods)])
    season = 52 if frequency == "W" else 7
    rows, ahead = [], []
    for i in range(items):
        for s in range(stores):
            level = 10 + 40 * rng.random() * (i + 1)
            shape = 1 + 0.3 * np.sin(2 * np.pi * np.arange(periods + horizon) / season)
            values = rng.poisson(level * shape)
            store = f"S{s + 1}" if stores else "_"
            rows.append(
                pd.DataFrame({ITEM: f"SKU-{i + 1:03d}", STORE: store, DATE: dates, QUANTITY: values[:periods].astype(float)})
            )
            future = pd.DatetimeIndex([dates[-1] + (k + 1) * step for k in range(horizon)])
            ahead.append(
                pd.DataFrame({ITEM: f"SKU-{i + 1:03d}", STORE: store, DATE: future, "prediction": level * shape[periods:]})
            )
    history = pd.concat(rows, ignore_index=True)
    forecast = pd.concat(ahead, ignore_index=True)
    if band:
        forecast = forecast.assign(p10=forecast["prediction"] * 0.8, p90=forecast["prediction"] * 1.2)
    holdout = history[history[DATE] > dates[-1] - horizon * step]
    backtest = holdout.rename(columns={QUANTITY: "actual"}).assign(
        prediction=lambda f: f["actual"] * rng.uniform(0.7, 1.3, len(f)),
        naive=lambda f: f["actual"] * rng.uniform(0.5, 1.5, len(f)),
    )
    return history, backtest.reset_index(drop=True), forecast


def summary(frequency: str = "W") -> dict:
    return {
        "dataset": "weekly-demo",
        "forecast_id": "abc-123",
        "model_version": "0123456789abcdef-deadbeef",
        "frequency": frequency,
        "horizon": 8,
        "series": 8,
        "generated_at": "2026-11-23T07:00:00+00:00",
        "validation": {
            "rows_in": 1000,
            "rows_clean": 990,
            "rows_quarantined": 10,
            "rules": {"negative_quantity": 7, "bad_date": 3},
        },
        "metrics": {
            "cutoff": "2025-03-03",
            "model": {"mae": 3.21, "wape": 0.123},
            "seasonal_naive": {"mae": 4.5, "wape": 0.17},
            "mae_improvement": 0.2867,
        },
    }
