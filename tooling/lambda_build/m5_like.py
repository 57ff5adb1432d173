"""M5-shaped daily sales at any size, fast: the scale benchmark's input.

Shaped like the M5 competition's Walmart data (3,049 items x 10 stores, daily): every item is sold
in every store; demand is intermittent (a negative binomial around a low rate for most series, so
most days sell nothing), with a weekly profile, a mild yearly cycle, sparse weekly price changes
per item-store (the price holds for a whole week, as M5's weekly prices do) with an elasticity,
and promotion days with an uplift. Series start at different dates (a product enters a store's
range later) and rows come ordered by date, as a daily export appends them.

Vectorised numpy, written in chunks of days (bounded memory: about CHUNK_ROWS rows at a time);
the same seed and size give the same bytes. A test-data generator, so it lives with the tooling.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ("date", "item_id", "store_id", "quantity", "unit_price", "promotion")  # the functions' canonical names
STORES = ("CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3")  # M5's ten stores
DEPARTMENTS = ("FOODS_1", "FOODS_2", "FOODS_3", "HOBBIES_1", "HOBBIES_2", "HOUSEHOLD_1", "HOUSEHOLD_2")
DEFAULT_DAYS = 1_096  # three years of history
DEFAULT_START = "2023-01-02"  # a Monday: week w is days 7w .. 7w + 6
CHUNK_ROWS = 500_000
LATE_SHARE = 0.35  # series that enter the range after the first day
LATE_SPAN = 0.7  # ... at a day uniform in the first 70% of the history
PRICE_CHANGE_RATE = 0.02  # per series and week
PRICE_STEPS = np.array([0.8, 0.9, 0.95, 1.0, 1.0, 1.05, 1.1])  # a new price, relative to the series' regular one
PROMOTION_RATE = 0.04  # per series and week; the promotion runs the week's first 2 to 7 days
WEEKLY = np.array([0.9, 0.85, 0.85, 0.9, 1.05, 1.25, 1.2])  # Monday .. Sunday


@dataclass(frozen=True)
class Shape:
    """How big: items x stores series over ``days`` days from ``start``."""

    items: int
    stores: int
    days: int = DEFAULT_DAYS
    start: str = DEFAULT_START

    @property
    def series(self) -> int:
        return self.items * self.stores


def expected_share_active() -> float:
    """The mean share of the history a series is in the range (late entrants start uniformly later)."""
    return (1 - LATE_SHARE) + LATE_SHARE * (1 - LATE_SPAN / 2)


def shape_for(rows: int, days: int = DEFAULT_DAYS) -> Shape:
    """The shape that yields about ``rows`` rows: all ten stores (fewer for tiny sizes), items to fill."""
    series = max(1, math.ceil(rows / (days * expected_share_active())))
    stores = min(len(STORES), series)
    return Shape(items=max(1, round(series / stores)), stores=stores, days=days)


@dataclass
class Series:
    """Per-series parameters, drawn once; series are ordered store by store, item by item."""

    item_ids: np.ndarray
    store_ids: np.ndarray
    first_day: np.ndarray  # the day the series enters the range
    rate: np.ndarray  # mean units a day at the regular price, before the weekly and yearly profiles
    dispersion: np.ndarray  # negative binomial shape: small = lumpier
    phase: np.ndarray  # yearly cycle's phase
    elasticity: np.ndarray
    uplift: np.ndarray  # on promotion days
    price: np.ndarray  # (series, weeks): the week's price
    regular: np.ndarray  # the regular price
    promotion_days: np.ndarray  # (series, weeks): the promotion runs the week's first N days (0: none)


def _item_names(items: int) -> np.ndarray:
    department = np.arange(items) % len(DEPARTMENTS)
    number = np.arange(items) // len(DEPARTMENTS) + 1
    return np.array([f"{DEPARTMENTS[d]}_{n:03d}" for d, n in zip(department, number, strict=True)], dtype=object)


def _weekly_prices(rng: np.random.Generator, n: int, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """The regular price per series and each week's price: a step lasts until the next change."""
    regular = np.round(rng.lognormal(np.log(4.0), 0.8, n).clip(0.25, 200.0), 2)
    changes = rng.random((n, weeks)) < PRICE_CHANGE_RATE
    changes[:, 0] = True  # every series starts at a drawn step (mostly the regular price)
    steps = PRICE_STEPS[rng.integers(len(PRICE_STEPS), size=(n, weeks))]
    steps[:, 0] = 1.0
    last_change = np.maximum.accumulate(np.where(changes, np.arange(weeks), 0), axis=1)
    step = np.take_along_axis(steps, last_change, axis=1)
    return np.round(regular[:, None] * step, 2).clip(0.01, None), regular


def draw_series(shape: Shape, rng: np.random.Generator) -> Series:
    """Every series' parameters (vectorised; a few arrays of series x weeks)."""
    n, weeks = shape.series, math.ceil(shape.days / 7)
    late = rng.random(n) < LATE_SHARE
    first_day = np.where(late, rng.integers(0, max(1, int(shape.days * LATE_SPAN)), n), 0)
    price, regular = _weekly_prices(rng, n, weeks)
    promoted = rng.random((n, weeks)) < PROMOTION_RATE
    return Series(
        item_ids=np.tile(_item_names(shape.items), shape.stores),
        store_ids=np.repeat(np.array(STORES[: shape.stores], dtype=object), shape.items),
        first_day=first_day,
        rate=rng.lognormal(np.log(0.5), 1.1, n).clip(0.02, 200.0),
        dispersion=rng.uniform(0.4, 3.0, n),
        phase=rng.uniform(0, 2 * np.pi, n),
        elasticity=rng.uniform(-2.5, -0.5, n),
        uplift=rng.uniform(1.3, 2.5, n),
        price=price,
        regular=regular,
        promotion_days=np.where(promoted, rng.integers(2, 8, (n, weeks)), 0),
    )


@dataclass
class Chunk:
    """Rows of consecutive days, day by day, each day's series in series order."""

    day: np.ndarray  # day number from the start
    series: np.ndarray  # series index
    quantity: np.ndarray
    price: np.ndarray
    promotion: np.ndarray


def _chunk(series: Series, days: np.ndarray, rng: np.random.Generator) -> Chunk:
    """Demand for ``days`` x every series; the rows of series already in the range."""
    week = days // 7
    price = series.price[:, week]  # (series, days)
    promotion = (days % 7)[None, :] < series.promotion_days[:, week]
    yearly = 1 + 0.15 * np.sin(2 * np.pi * days[None, :] / 365.25 + series.phase[:, None])
    mean = series.rate[:, None] * WEEKLY[days % 7][None, :] * yearly
    mean *= (price / series.regular[:, None]) ** series.elasticity[:, None]
    mean *= np.where(promotion, series.uplift[:, None], 1.0)
    shape = series.dispersion[:, None]
    quantity = rng.poisson(rng.gamma(shape, mean / shape))  # negative binomial: intermittent and lumpy
    active = (days[None, :] >= series.first_day[:, None]).T  # (days, series): date order
    day_index, series_index = np.nonzero(active)
    return Chunk(
        day=days[day_index],
        series=series_index,
        quantity=quantity.T[active],
        price=price.T[active],
        promotion=promotion.T[active].astype(np.int8),
    )


def iter_chunks(shape: Shape, seed: int = 0, window: range | None = None) -> Iterator[tuple[Series, Chunk]]:
    """The data in date order, chunk by chunk; the same (shape, seed) gives the same rows.

    ``window`` (days from the start) keeps a part: the history and a later upload of the same
    series are the rows the whole would have, split by day."""
    series = draw_series(shape, np.random.default_rng([seed, 0]))
    per_chunk = max(1, CHUNK_ROWS // shape.series)
    window = window or range(shape.days)
    for number, first in enumerate(range(0, shape.days, per_chunk)):
        days = np.arange(first, min(first + per_chunk, shape.days))
        if days[-1] < window.start or days[0] >= window.stop:
            continue
        chunk = _chunk(series, days, np.random.default_rng([seed, 1, number]))
        keep = (chunk.day >= window.start) & (chunk.day < window.stop)
        if keep.any():
            yield series, Chunk(*(getattr(chunk, name)[keep] for name in ("day", "series", "quantity", "price", "promotion")))


def to_frame(series: Series, chunk: Chunk, start: str = DEFAULT_START) -> pd.DataFrame:
    """A chunk as a frame of the canonical columns (for tests and small uses)."""
    dates = pd.Timestamp(start) + pd.to_timedelta(chunk.day, unit="D")
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "item_id": series.item_ids[chunk.series],
            "store_id": series.store_ids[chunk.series],
            "quantity": chunk.quantity,
            "unit_price": chunk.price,
            "promotion": chunk.promotion,
        }
    )


def frame(shape: Shape, seed: int = 0) -> pd.DataFrame:
    """The whole dataset as one frame of the canonical columns (in memory: for benchmarks of a
    few million rows; :func:`write_csv` streams larger ones)."""
    return pd.concat([to_frame(series, chunk) for series, chunk in iter_chunks(shape, seed)], ignore_index=True)


def _csv_lines(series: Series, chunk: Chunk, start: str) -> str:
    """The chunk as CSV text, from lookup tables of pre-formatted fields (fast: three joins per row)."""
    first, last = int(chunk.day.min()), int(chunk.day.max())
    dates = pd.date_range(pd.Timestamp(start) + pd.Timedelta(days=first), periods=last - first + 1, freq="D")
    date_text = np.array(dates.strftime("%Y-%m-%d,"), dtype=object)
    keys = series.item_ids + "," + series.store_ids + ","
    quantity_text = np.array([f"{q}," for q in range(int(chunk.quantity.max()) + 1)], dtype=object)
    prices, price_index = np.unique(chunk.price, return_inverse=True)
    tails = np.array([f"{p:.2f},{flag}\n" for p in prices for flag in (0, 1)], dtype=object)
    lines = date_text[chunk.day - first] + keys[chunk.series] + quantity_text[chunk.quantity]
    lines += tails[price_index * 2 + chunk.promotion]
    return "".join(lines.tolist())


def write_csv(path: Path, shape: Shape, seed: int = 0, window: range | None = None) -> dict:
    """Write the data (the days in ``window``: all by default) as CSV (gzip when ``path`` ends in
    .gz, level 1); rows, series and days written."""
    path = Path(path)
    opener = gzip.open(path, "wt", compresslevel=1, newline="") if path.suffix == ".gz" else open(path, "w", newline="")
    rows, zeros = 0, 0
    with opener as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for series, chunk in iter_chunks(shape, seed, window):
            handle.write(_csv_lines(series, chunk, shape.start))
            rows += len(chunk.day)
            zeros += int((chunk.quantity == 0).sum())
    return {
        "rows": rows,
        "series": shape.series,
        "items": shape.items,
        "stores": shape.stores,
        "days": len(window or range(shape.days)),
        "zero_share": round(zeros / max(rows, 1), 3),
        "bytes": path.stat().st_size,
    }
