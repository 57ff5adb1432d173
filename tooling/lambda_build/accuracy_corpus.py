"""The accuracy benchmark's corpus: retail-like exports of every shape, generated or shipped.

Generated exports (deterministic, seeded) follow what retail demand does: a level per series,
a yearly season and (daily) a weekday profile, a trend, holidays (the weeks before Christmas,
Black Friday), prices that change now and then and drop during promotions, a price elasticity
and a promotion uplift per item, over-dispersed (negative binomial) noise, and for the
intermittent shape long runs of zeros. Public series come from packages on PyPI that ship them
(no download at run time): statsmodels' ``elec_equip`` (Euro-area electrical equipment orders,
monthly) and statsforecast's ``AirPassengersDF`` (the airline passengers series, monthly).

A test-data generator, so it lives with the tooling; frames have the canonical columns of
``item_prediction.domain.schema`` (functions/ on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from item_prediction.domain import schema

PERIODS_PER_YEAR = {"D": 365.25, "W": 52.18, "M": 12.0}
DATE_FREQ = {"D": "D", "W": "W-SUN", "M": "MS"}


@dataclass(frozen=True)
class Export:
    """One export of the corpus: its rows (canonical columns), frequency, horizon and origin."""

    name: str
    frame: pd.DataFrame
    frequency: str
    horizon: int
    source: str
    has_price: bool = True


def _holiday_uplift(dates: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """Christmas shopping (the 3 weeks before 24 December) and Black Friday's week: demand up."""
    uplift = np.ones(len(dates))
    if frequency == "M":
        return uplift  # a monthly series sees December through its yearly season
    christmas = pd.to_datetime([f"{year}-12-24" for year in dates.year])
    days_before = (christmas - dates).days.to_numpy()
    span = 7 if frequency == "W" else 1
    uplift *= np.where((days_before >= -span + 1) & (days_before < 21), 1.8, 1.0)
    november = pd.to_datetime([f"{year}-11-01" for year in dates.year])
    black_friday = november + pd.to_timedelta((4 - november.day_of_week) % 7 + 21, unit="D")
    days_after = (dates - black_friday).days.to_numpy()
    uplift *= np.where((days_after > -span) & (days_after < 4), 2.2, 1.0)
    return uplift


def _series(
    rng: np.random.Generator, dates: pd.DatetimeIndex, frequency: str, *, level: float, intermittent: bool, with_price: bool
):
    n = len(dates)
    t = np.arange(n)
    base_price = round(float(rng.uniform(1.5, 30.0)), 2)
    regular = np.full(n, base_price)
    for change in rng.choice(n, size=max(1, n // 60), replace=False):
        regular[change:] = round(float(regular[change] * rng.uniform(0.9, 1.15)), 2)
    promo_rate = 0.0 if not with_price else rng.uniform(0.03, 0.12)
    promotion = np.zeros(n, dtype=int)
    starts = np.flatnonzero(rng.random(n) < promo_rate / 2)
    for start in starts:  # promotions last one or two periods
        promotion[start : start + int(rng.integers(1, 3))] = 1
    discount = rng.uniform(0.1, 0.35)
    price = np.round(regular * np.where(promotion == 1, 1 - discount, 1.0), 2)
    elasticity = rng.uniform(0.8, 2.5)
    uplift = rng.uniform(1.2, 1.8)
    phase = rng.uniform(0, 2 * np.pi)
    yearly = 1 + rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * t / PERIODS_PER_YEAR[frequency] + phase)
    weekly = 1.0
    if frequency == "D":
        profile = np.array([0.8, 0.85, 0.9, 1.0, 1.25, 1.5, 0.7]) * rng.uniform(0.85, 1.15, 7)
        weekly = profile[dates.day_of_week]
    trend = 1 + rng.uniform(-0.3, 0.5) * t / n
    mean = level * yearly * weekly * trend * _holiday_uplift(dates, frequency)
    if with_price:
        mean = mean * (price / base_price) ** -elasticity * np.where(promotion == 1, uplift, 1.0)
    dispersion = 2.0 if intermittent else 8.0  # negative binomial: variance = mean + mean^2 / dispersion
    quantity = rng.negative_binomial(dispersion, dispersion / (dispersion + mean))
    return quantity, (price if with_price else np.full(n, np.nan)), promotion


def generate(
    *,
    frequency: str,
    series: int,
    periods: int,
    seed: int,
    start: str = "2022-01-03",
    level: tuple[float, float] = (2.0, 0.8),
    intermittent: bool = False,
    with_price: bool = True,
    gap_rate: float = 0.0,
    stores: int = 1,
) -> pd.DataFrame:
    """Rows of ``series`` series (items x ``stores``), ``periods`` periods each, some starting late.

    ``level`` is the (mean, sigma) of the log of each series' average sales; zero-sale periods
    are left out of the export (as shop exports do) with probability ``gap_rate``.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=periods, freq=DATE_FREQ[frequency])
    frames = []
    for index in range(series):
        late = int(rng.integers(0, periods // 3)) if rng.random() < 0.15 else 0  # new products
        quantity, price, promotion = _series(
            rng, dates, frequency, level=float(rng.lognormal(*level)), intermittent=intermittent, with_price=with_price
        )
        frames.append(
            pd.DataFrame(
                {
                    schema.DATE: dates[late:].strftime("%Y-%m-%d"),
                    schema.ITEM: f"SKU-{index // stores:04d}",
                    schema.STORE: f"S{index % stores:02d}",
                    schema.QUANTITY: quantity[late:].astype("float64"),
                    schema.PRICE: price[late:],
                    schema.PROMOTION: promotion[late:],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    dropped = (frame[schema.QUANTITY] == 0) & (rng.random(len(frame)) < gap_rate)
    return frame[~dropped].reset_index(drop=True)


def _single_series(values: pd.Series, dates, item: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.DATE: pd.DatetimeIndex(dates).strftime("%Y-%m-%d"),
            schema.ITEM: item,
            schema.STORE: schema.NO_STORE,
            schema.QUANTITY: np.asarray(values, dtype="float64"),
            schema.PRICE: np.nan,
            schema.PROMOTION: 0,
        }
    )


def public_exports() -> list[Export]:
    """Series that packages ship (statsmodels is a dependency of statsforecast in the dev venv)."""
    from statsforecast.utils import AirPassengersDF
    from statsmodels.datasets import elec_equip

    orders = elec_equip.load_pandas().data
    air = AirPassengersDF
    month_starts = pd.DatetimeIndex(air["ds"]).to_period("M").to_timestamp()
    return [
        Export(
            "monthly, 1 series, electrical equipment orders (public)",
            _single_series(orders.iloc[:, 0], orders.index, "elec_equip"),
            "M",
            6,
            "statsmodels.datasets.elec_equip (Eurostat, 1995-2016)",
            has_price=False,
        ),
        Export(
            "monthly, 1 series, airline passengers (public)",
            _single_series(air["y"], month_starts, "air_passengers"),
            "M",
            6,
            "statsforecast.utils.AirPassengersDF (Box & Jenkins, 1949-1960)",
            has_price=False,
        ),
    ]


def corpus(*, quick: bool = False) -> list[Export]:
    """The benchmark's exports; ``quick`` makes each smaller (fewer series), same shapes."""
    scale = 0.25 if quick else 1.0

    def count(n: int) -> int:
        return max(3, int(n * scale))

    generated = "generated: tooling/lambda_build/accuracy_corpus.py"
    return [
        Export(
            f"weekly, {count(400)} series, price and promotions",
            generate(frequency="W", series=count(400), periods=156, seed=1, stores=4, level=(3.0, 1.0)),
            "W",
            8,
            generated,
        ),
        Export(
            f"daily, {count(120)} series, price and promotions",
            generate(frequency="D", series=count(120), periods=730, seed=2, stores=3, level=(1.5, 0.8), gap_rate=0.5),
            "D",
            14,
            generated,
        ),
        Export(
            f"daily, {count(150)} series, intermittent",
            generate(frequency="D", series=count(150), periods=500, seed=3, level=(-0.8, 0.6), intermittent=True, gap_rate=1.0),
            "D",
            14,
            generated,
        ),
        Export(
            "weekly, 7 series, no price",
            generate(frequency="W", series=7, periods=120, seed=4, with_price=False, level=(5.0, 0.5)),
            "W",
            8,
            generated,
            has_price=False,
        ),
        Export(
            f"monthly, {count(200)} series, price and promotions",
            generate(frequency="M", series=count(200), periods=60, seed=5, start="2020-01-01", stores=2, level=(4.0, 1.0)),
            "M",
            6,
            generated,
        ),
        *public_exports(),
    ]
