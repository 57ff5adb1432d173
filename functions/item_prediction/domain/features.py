"""FeatureEngineering: from validated rows to a model-ready feature set, with no future leakage.

The grid. Each series (item x store) is put on a regular time grid at the dataset's frequency,
from its first to its last period. A period without a record becomes an explicit row with
``is_gap = 1`` and quantity 0: exports usually leave out periods without sales, so a missing
period is read as "nothing sold". Weekly periods start on the dataset's usual weekday (the most
common one) and are labelled by that day; records of one series in the same week are summed
(prices averaged, promotion if any day had one). Monthly periods are labelled by the month's
first day, whatever day of the month the export dates them (the 1st, the last, any), and sum alike.

Two kinds of features (scikit-learn's vocabulary: all are computed per row, from the row's own
series only):

* history features use quantities strictly before the row's period: lags are shifts, rolling
  means, the standard deviation of the shortest window and the share of gap periods are computed over the series shifted
  by one period, and ``series_mean_to_date`` is the expanding mean of the shifted series (a
  target encoding that only ever sees the past);
* known-in-advance features describe the period itself and are planned, not observed: calendar
  (at the series' frequency), unit price, promotion flag, price relative to the series' median
  price up to and including the period, price change against the previous period, and ordinal
  codes of the item and store from a vocabulary kept in the manifest.

``is_gap`` is kept in the feature set but is not a model feature: it is known only once the
period is over (it would leak the target).

Because history features only look back a bounded number of periods (plus the running sum and
count behind ``series_mean_to_date``), a forecast can compute them on a short tail of each series,
given those running totals (``prior``), and get exactly the values a full recomputation would.

The same holds for a whole feature set: :func:`prior_table` cuts each series of a full-history
grid where its recent window starts (one row per series: the cut, the running totals, the last
price and the price distribution before it, the encodings), and :func:`build_features` with that
``prior`` on the validated rows from each series' cut on gives, on every row at least
``history_needed`` periods after the cut (each series' last rows: where a forecast starts), the
features a full-history build gives.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import schema

FEATURES_VERSION = "3.0"
# Chosen by the accuracy benchmark and the training cost together (docs/scaling.md, "Training
# cost"): a fit's time grows with rows x features, and these are the features whose removal cost
# no accuracy on any export (lag 3 and lag 21, the std of the longer window, quarter, year, ISO
# week, weekend flag, the per-series code: each repeats what another feature says).
LAGS = {"D": (1, 2, 7, 14, 28), "W": (1, 2, 4, 8, 13, 26, 52), "M": (1, 2, 6, 12)}
WINDOWS = {"D": (7, 28), "W": (4, 13), "M": (3, 12)}
CALENDAR = {
    "D": ("day_of_week", "day_of_month", "month", "day_of_year_sin", "day_of_year_cos"),
    "W": ("month", "day_of_year_sin", "day_of_year_cos"),
    "M": ("month", "days_in_month"),
}
ENCODINGS = ("item_code", "store_code")
SERIES = [schema.ITEM, schema.STORE]
KEY_COLUMNS = (schema.DATE, schema.ITEM, schema.STORE)
BASE_COLUMNS = [schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY, schema.PRICE, schema.PROMOTION, "is_gap"]
TARGET = schema.QUANTITY
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def history_needed(frequency: str) -> int:
    """Periods of history that the bounded history features of one period look back on."""
    return max(max(LAGS[frequency]), max(WINDOWS[frequency]) + 1)


def history_feature_names(frequency: str) -> list[str]:
    lags = [f"lag_{k}" for k in LAGS[frequency]]
    shortest = min(WINDOWS[frequency])
    windows = [f"rolling_mean_{w}" for w in WINDOWS[frequency]] + [f"rolling_std_{shortest}"]
    gaps = [f"gap_share_{max(WINDOWS[frequency])}"]
    return [*lags, *windows, *gaps, "series_mean_to_date"]


PLANNED_FEATURES = {schema.PRICE: ("unit_price", "price_ratio", "price_change"), schema.PROMOTION: ("promotion",)}


def feature_names(frequency: str, known_in_advance: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The model's inputs, in order.

    ``known_in_advance``: the columns whose future values a plan gives (the mapping's). Price and
    promotion features are inputs only for those: a forecast without their future values could
    only assume them, and the accuracy benchmark measured that assuming "no promotion" costs more
    than leaving them out (the model then learns their average effect into the other features).
    None: every feature (all declared).
    """
    known = schema.KNOWN_IN_ADVANCE_COLUMNS if known_in_advance is None else known_in_advance
    planned = [name for column in schema.KNOWN_IN_ADVANCE_COLUMNS if column in known for name in PLANNED_FEATURES[column]]
    return [*history_feature_names(frequency), *CALENDAR[frequency], *planned, *ENCODINGS]


def grid_freq(frequency: str, dates: pd.Series) -> str:
    """The pandas frequency of the grid: ``D``, ``W-<weekday>`` with the data's usual weekday, or
    ``MS`` (months labelled by their first day)."""
    if frequency == "D":
        return "D"
    if frequency == "M":
        return "MS"
    if frequency != "W":
        raise ValueError(f"frequency must be one of {list(schema.FREQUENCIES)}, got {frequency!r}")
    weekday = pd.to_datetime(dates).dt.day_of_week.mode().iloc[0]
    return f"W-{WEEKDAYS[weekday]}"


def period_number(dates: pd.Series, frequency: str) -> np.ndarray:
    """An integer per grid date that counts periods: days, weeks or months since 1970 (dates on
    the grid, so two dates are ``b - a`` periods apart)."""
    dates = pd.to_datetime(pd.Series(dates))
    if frequency == "M":
        return ((dates.dt.year - 1970) * 12 + dates.dt.month - 1).to_numpy(dtype="int64")
    days = (dates - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype="int64")
    return days // 7 if frequency == "W" else days


def period_dates(numbers: np.ndarray, frequency: str, anchor: pd.Timestamp) -> np.ndarray:
    """The grid dates of period numbers (the inverse of :func:`period_number`; ``anchor`` is any
    grid date, which fixes a weekly grid's weekday)."""
    numbers = np.asarray(numbers, dtype="int64")
    if frequency == "M":
        return (np.datetime64("1970-01", "M") + numbers).astype("datetime64[ns]")
    days = 1 if frequency == "D" else 7
    start = period_number(pd.Series([anchor]), frequency)[0]
    return np.datetime64(anchor, "ns") + (numbers - start) * np.timedelta64(days, "D")


def to_period_start(dates: pd.Series, frequency: str, freq: str) -> pd.Series:
    """Dates moved back to the start of their period: the week's anchor weekday, the month's first day."""
    if frequency == "W":
        anchor = WEEKDAYS.index(freq.split("-")[1])
        return dates - pd.to_timedelta((dates.dt.day_of_week - anchor) % 7, unit="D")
    if frequency == "M":
        return dates.dt.to_period("M").dt.to_timestamp()
    return dates


def regular_grid(clean: pd.DataFrame, frequency: str, prior: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per series and period from its first to its last period; gaps flagged and zero-filled.

    ``prior`` (:func:`prior_table`): a series with periods before its ``cut`` starts at the cut
    (the gaps up to its first row included, as in the full history), its gaps' price carried on
    from ``last_price``; a weekly grid keeps the cuts' weekday.
    """
    frame = clean[[schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY, schema.PRICE, schema.PROMOTION]].copy()
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    started = _started(prior)
    freq = grid_freq(frequency, started["cut"] if len(started) else frame[schema.DATE])
    if frequency != "D":  # move every date back to its period's start, summing what shares a period
        frame[schema.DATE] = to_period_start(frame[schema.DATE], frequency, freq)
        frame = frame.groupby([*SERIES, schema.DATE], as_index=False, sort=False).agg(
            {schema.QUANTITY: "sum", schema.PRICE: "mean", schema.PROMOTION: "max"}
        )
    # Integer series keys in the keys' sorted order (two single-column factorizations): sorting,
    # grouping and merging on them is much cheaper than on the string keys, and the order is the same.
    item_codes, items = pd.factorize(frame[schema.ITEM], sort=True)
    store_codes, stores = pd.factorize(frame[schema.STORE], sort=True)
    frame["_series"] = item_codes.astype("int64") * max(len(stores), 1) + store_codes
    frame["_period"] = period_number(frame[schema.DATE], frequency)
    frame = frame.sort_values(["_series", "_period"], kind="stable").reset_index(drop=True)
    # Every series' full range of periods at once: repeat each series' key and count periods up.
    bounds = frame.groupby("_series", sort=True)["_period"].agg(["min", "max"])
    if len(started):  # series that began before their cut start at it
        codes = pd.Index(items).get_indexer(started.index.get_level_values(0)).astype("int64") * max(len(stores), 1)
        codes += pd.Index(stores).get_indexer(started.index.get_level_values(1))
        cuts = pd.Series(period_number(started["cut"], frequency), index=codes).reindex(bounds.index)
        bounds["min"] = np.fmin(bounds["min"], cuts.to_numpy()).astype("int64")
    periods = (bounds["max"] - bounds["min"] + 1).to_numpy()
    starts = np.repeat(np.cumsum(periods) - periods, periods)
    numbers = np.repeat(bounds["min"].to_numpy(), periods) + (np.arange(periods.sum()) - starts)
    keys = np.repeat(bounds.index.to_numpy(), periods)
    runs = Runs(changes(keys))  # the grid's layout: its series in the order of their codes
    grid = pd.DataFrame(
        {
            "_series": keys,
            "_period": numbers,
            schema.ITEM: np.asarray(items, dtype=object)[keys // max(len(stores), 1)],
            schema.STORE: np.asarray(stores, dtype=object)[keys % max(len(stores), 1)],
            schema.DATE: period_dates(numbers, frequency, frame[schema.DATE].iloc[0]),
        }
    )
    values = frame[["_series", "_period", schema.QUANTITY, schema.PRICE, schema.PROMOTION]]
    grid = grid.merge(values, on=["_series", "_period"], how="left", validate="one_to_one").drop(columns=["_series", "_period"])
    grid["is_gap"] = grid[schema.QUANTITY].isna().astype("int8")
    grid[schema.QUANTITY] = grid[schema.QUANTITY].fillna(0.0).astype("float64")
    # A gap's price is the series' last known price (then the next one, before the first record).
    if len(started):
        seed = runs.per_series(grid, started["last_price"])[runs.ids]
        grid[schema.PRICE] = grid[schema.PRICE].where((runs.position > 0) | grid[schema.PRICE].notna(), seed)
    by_series = grid[schema.PRICE].groupby(runs.ids, sort=False).ffill().groupby(runs.ids, sort=False)
    grid[schema.PRICE] = by_series.bfill().astype("float64")
    grid[schema.PROMOTION] = grid[schema.PROMOTION].fillna(0).astype("int8")
    return grid[BASE_COLUMNS]


def add_calendar(frame: pd.DataFrame, frequency: str) -> pd.DataFrame:
    dates = frame[schema.DATE].dt
    day_of_year = dates.day_of_year.to_numpy()
    values = {
        "day_of_week": lambda: dates.day_of_week.astype("int8"),
        "day_of_month": lambda: dates.day.astype("int8"),
        "month": lambda: dates.month.astype("int8"),
        "day_of_year_sin": lambda: np.sin(2 * np.pi * day_of_year / 365.25),
        "day_of_year_cos": lambda: np.cos(2 * np.pi * day_of_year / 365.25),
        "days_in_month": lambda: dates.days_in_month.astype("int8"),
    }
    for name in CALENDAR[frequency]:  # only the frequency's: each costs a pass over the dates
        frame[name] = values[name]()
    return frame


def series_starts(frame: pd.DataFrame) -> np.ndarray:
    """True on each row that starts a series in a frame grouped by series (every caller sorts by
    series first): comparing neighbours costs a pass, where grouping by the string keys hashes them."""
    return changes(*(_comparable(frame[column]) for column in SERIES))


def _comparable(column: pd.Series) -> np.ndarray:
    """The column as a numpy array whose neighbours compare equal exactly where its values do:
    Python objects as they are (:func:`_objects`), other keys (pyarrow strings) as factorized
    codes, much cheaper than turning each into a Python object."""
    objects = _objects(column)
    return objects if objects is not None else pd.factorize(column)[0]


def _objects(column: pd.Series) -> np.ndarray | None:
    """The column's values as the numpy array of Python objects it holds, when it holds one: an
    object column, or text stored as Python strings (pandas' ``str`` without pyarrow, as in the
    functions' layers), whose array is a view. Comparing those neighbour to neighbour is a numpy
    loop (9 ms a million rows), where the text array's own comparisons or a factorization take
    about 45 ms. None for other columns (pyarrow strings would be turned into objects one by one)."""
    if column.dtype == object or (isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "python"):
        return column.to_numpy(dtype=object)
    return None


def changes(*columns: np.ndarray) -> np.ndarray:
    """True on the first row and on each row where any of ``columns`` differs from the row before."""
    starts = np.ones(len(columns[0]), dtype=bool)
    starts[1:] = np.any([column[1:] != column[:-1] for column in columns], axis=0) if len(starts) else []
    return starts


def series_ids(frame: pd.DataFrame) -> np.ndarray:
    """An integer per series, counting up in the frame's order (a frame grouped by series)."""
    return np.cumsum(series_starts(frame)) - 1


def _by_series(values: pd.Series, ids: np.ndarray):
    return values.groupby(ids, sort=False)


class Runs:
    """The layout of a frame grouped by series (every caller sorts by series first), and per-series
    shifts and running sums in numpy: each series is a contiguous run of rows, so a shift is a
    slice masked at each run's start and a running sum is the column's minus its value before the
    run. No group keys are hashed (the recursive forecast computes this once and reuses it)."""

    def __init__(self, starts: np.ndarray) -> None:
        self.first = np.flatnonzero(starts)  # each series' first row
        self.last = np.append(self.first[1:], len(starts))[: len(self.first)] - 1  # and last row
        self.ids = np.cumsum(starts) - 1  # each row's series, counting up in the frame's order
        self.start_of = self.first[self.ids]
        self.position = np.arange(len(starts)) - self.start_of

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Runs:
        return cls(series_starts(frame))

    def shift(self, values: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Each row's value ``k`` rows earlier in its series (NaN before the series' ``k``-th row);
        ``rows`` (positions): those rows' only, in that order."""
        if rows is not None:
            shifted = values[np.maximum(rows - k, 0)].astype("float64", copy=False)
            shifted[self.position[rows] < k] = np.nan
            return shifted
        shifted = np.full(len(values), np.nan)
        if k < len(values):
            shifted[k:] = values[: len(values) - k]
        shifted[self.position < k] = np.nan
        return shifted

    def cumsum(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The running sum of ``values`` within each series (``rows``: those rows' only)."""
        total = np.cumsum(values)
        if rows is not None:
            start = self.start_of[rows]
            return total[rows] - total[start] + values[start]
        return total - total[self.start_of] + values[self.start_of]

    def per_series(self, frame: pd.DataFrame, table: pd.DataFrame | pd.Series, fill=np.nan) -> np.ndarray:
        """The rows of ``table`` (indexed by item and store) of each series of ``frame``, in its
        order (``fill`` for a series it lacks): the keys are looked up once per series."""
        keys = pd.MultiIndex.from_frame(frame[SERIES].take(self.first))
        return table.reindex(keys, fill_value=fill).to_numpy()


def _rolling(values: pd.Series, runs: Runs, window: int, stat: str, min_periods: int, wanted=None) -> pd.Series:
    """A per-series rolling ``mean`` or ``std`` of ``values`` (frame sorted by series, then date).

    One pass over the whole column, then the first ``window - 1`` rows of each series, whose
    window would reach into the previous series, are replaced by the expanding statistic of
    their own series (what a per-series rolling window holds there). Much faster than a
    grouped rolling window with many series, and the same values. ``wanted`` (row positions):
    only those rows' values are needed; the others' may be left unfinished.
    """
    rolled = getattr(values.rolling(window, min_periods=min_periods), stat)()
    early = runs.position < window - 1
    if early.any() if wanted is None else early[wanted].any():
        raw = values.to_numpy(dtype="float64")
        count = runs.cumsum(~np.isnan(raw) * 1.0)
        total = runs.cumsum(np.nan_to_num(raw))
        with np.errstate(invalid="ignore", divide="ignore"):
            if stat == "mean":
                expanding = np.where(count >= min_periods, total / count, np.nan)
            else:
                squares = runs.cumsum(np.nan_to_num(raw) ** 2)
                variance = np.clip((squares - total**2 / count) / (count - 1), 0.0, None)
                expanding = np.sqrt(np.where(count >= max(min_periods, 2), variance, np.nan))
        rolled = rolled.where(~early, expanding)
    return rolled


def history_features(
    quantity: np.ndarray,
    is_gap: np.ndarray,
    runs: Runs,
    frequency: str,
    before: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Lags, rolling statistics, gap share and the running mean of each row, from periods strictly
    before it (the columns of a frame with layout ``runs``). ``before``: per row, the sum and
    count of its series' quantities before the frame's first row (see :func:`add_history`)."""
    values = quantity_features(quantity, runs, frequency, before) | gap_features(is_gap, runs, frequency)
    return {name: values[name] for name in history_feature_names(frequency)}


def quantity_features(
    quantity: np.ndarray,
    runs: Runs,
    frequency: str,
    before: tuple[np.ndarray, np.ndarray] | None = None,
    wanted: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The history features of the quantities (all but the gap share): lags, rolling statistics and
    the running mean. ``wanted`` (row positions): the values of those rows only, in that order (the
    recursive forecast's step; the rolling windows still pass over every row, which keeps their
    floating-point sums, and so their values, those of the whole column)."""
    take = (lambda column: column) if wanted is None else (lambda column: column[wanted])  # noqa: E731
    values = {f"lag_{k}": runs.shift(quantity, k, wanted) for k in LAGS[frequency]}
    previous = pd.Series(runs.shift(quantity, 1))  # what is known at each period
    for window in WINDOWS[frequency]:
        values[f"rolling_mean_{window}"] = take(_rolling(previous, runs, window, "mean", 1, wanted).to_numpy())
    shortest = min(WINDOWS[frequency])  # the spread of the recent window; the longer one's added nothing
    values[f"rolling_std_{shortest}"] = take(_rolling(previous, runs, shortest, "std", 2, wanted).to_numpy())
    known = previous.to_numpy()
    running_sum = runs.cumsum(np.nan_to_num(known), wanted)
    running_count = runs.cumsum(~np.isnan(known) * 1.0, wanted)
    if before is not None:
        running_sum, running_count = running_sum + take(before[0]), running_count + take(before[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        values["series_mean_to_date"] = np.where(running_count > 0, running_sum / running_count, np.nan)
    return values


def gap_features(is_gap: np.ndarray, runs: Runs, frequency: str, wanted: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The share of gap periods in the longest window before each row (of every row; ``wanted``:
    the rows whose values are read, the others may be left unfinished). It does not depend on the
    quantities: the recursive forecast computes it once for all its steps."""
    longest = max(WINDOWS[frequency])
    previous_gap = pd.Series(runs.shift(is_gap, 1))
    return {f"gap_share_{longest}": _rolling(previous_gap, runs, longest, "mean", 1, wanted).to_numpy()}


def add_history(frame: pd.DataFrame, frequency: str, prior: pd.DataFrame | None = None, runs: Runs | None = None) -> pd.DataFrame:
    """Lags, rolling statistics, gap share and the running mean, from periods strictly before each row.

    ``frame`` must be sorted by series, then date (``runs``: its layout, when known). ``prior``
    (indexed by item and store, columns ``sum`` and ``count``) holds the quantities of each series
    before the frame's first row, for a frame that is the tail of longer series; the running mean
    then covers the whole history.
    """
    runs = runs or Runs.of(frame)
    before = None
    if prior is not None and len(prior):
        totals = runs.per_series(frame, prior[["sum", "count"]], 0.0)[runs.ids]
        before = (totals[:, 0], totals[:, 1])
    quantity, is_gap = frame[TARGET].to_numpy(dtype="float64"), frame["is_gap"].to_numpy(dtype="float64")
    for name, values in history_features(quantity, is_gap, runs, frequency, before).items():
        frame[name] = values
    return frame


def running_totals(grid: pd.DataFrame, ids: np.ndarray | None = None) -> pd.DataFrame:
    """Per series: the sum and count of quantities in ``grid`` (the ``prior`` of :func:`add_history`),
    indexed by item and store, or by the series ``ids`` of the rows when given."""
    return grid.groupby(SERIES if ids is None else ids, sort=False)[TARGET].agg(sum="sum", count="count").astype("float64")


class PriceCounts(NamedTuple):
    """How many periods of each series had each price before a frame: parallel arrays (series id in
    the frame's order, price, periods), a pair possibly listed more than once."""

    ids: np.ndarray
    prices: np.ndarray
    counts: np.ndarray

    @staticmethod
    def of_rows(prices: np.ndarray, ids: np.ndarray) -> PriceCounts:
        """The counts of rows grouped by series (runs of one price in a row counted at once)."""
        valid = ~np.isnan(prices)
        prices, ids = prices[valid], ids[valid]
        runs = np.flatnonzero(changes(prices, ids))
        return PriceCounts(ids[runs], prices[runs], np.diff(np.append(runs, len(prices))).astype("float64"))

    @staticmethod
    def of_prior(prior: pd.DataFrame, frame: pd.DataFrame, runs: Runs) -> PriceCounts:
        """The price distributions of an indexed prior (``prices``, :func:`prior_table`) of ``frame``'s series."""
        entries = [
            (series, float(price), float(count))
            for series, text in enumerate(runs.per_series(frame, prior["prices"], None))
            if isinstance(text, str)
            for price, count in json.loads(text)
        ]
        ids, prices, counts = zip(*entries, strict=True) if entries else ((), (), ())
        return PriceCounts(np.asarray(ids, dtype="int64"), np.asarray(prices, dtype="float64"), np.asarray(counts))

    def __add__(self, other: PriceCounts) -> PriceCounts:
        return PriceCounts(*(np.concatenate([mine, theirs]) for mine, theirs in zip(self, other, strict=True)))


def expanding_median(prices: np.ndarray, runs: Runs, before: PriceCounts) -> np.ndarray:
    """Each row's median price over its series' ``before`` and the frame's prices up to the row
    (NaN skipped, NaN with none: pandas' expanding median, of a history the frame continues).

    Position by position, all series at once: each position adds one price per series to the
    counts of every (series, price) pair, and each series' two middle values are read off the
    running total (the multiset's median: their mean, as pandas takes it).
    """
    valid = ~np.isnan(prices)
    series = np.concatenate([before.ids, runs.ids[valid]])
    values = np.concatenate([before.prices, prices[valid]])
    order = np.lexsort((values, series))
    series, values = series[order], values[order]
    distinct = changes(series, values)
    pair = np.empty(len(order), dtype="int64")
    pair[order] = np.cumsum(distinct) - 1  # each entry's (series, price) pair, pairs sorted
    pair_series, pair_price = series[distinct], values[distinct]
    counts = np.bincount(pair[: len(before.ids)], weights=before.counts, minlength=len(pair_price))
    row_pair = np.full(len(prices), -1)
    row_pair[valid] = pair[len(before.ids) :]
    bounds = np.searchsorted(pair_series, np.arange(len(runs.first) + 1))  # each series' pairs
    reference = np.full(len(prices), np.nan)
    for position in range(int(runs.position.max(initial=-1)) + 1 if len(pair_price) else 0):
        rows = np.flatnonzero(runs.position == position)  # one per series at most: distinct pairs
        counts[row_pair[rows][row_pair[rows] >= 0]] += 1
        cumulative = np.cumsum(counts)
        below = np.append(0.0, cumulative)[bounds[runs.ids[rows]]]
        total = np.append(0.0, cumulative)[bounds[runs.ids[rows] + 1]] - below
        low = np.minimum(np.searchsorted(cumulative, below + (total + 1) // 2), len(pair_price) - 1)
        high = np.minimum(np.searchsorted(cumulative, below + total // 2 + 1), len(pair_price) - 1)
        reference[rows] = np.where(total > 0, (pair_price[low] + pair_price[high]) / 2, np.nan)
    return reference


def add_price_and_promotion(frame: pd.DataFrame, before: PriceCounts | None = None, runs: Runs | None = None) -> pd.DataFrame:
    """Relative price and price change; the reference median covers the series up to each period
    (with ``before``, the prices of the periods before the frame too)."""
    runs = runs or Runs.of(frame)
    price = frame[schema.PRICE]
    if before is None:
        reference = _by_series(price, runs.ids).expanding(min_periods=1).median().reset_index(level=0, drop=True)
        reference = reference.reindex(frame.index).to_numpy()
    else:
        reference = expanding_median(price.to_numpy(dtype="float64"), runs, before)
    frame["price_ratio"] = price / reference
    values = price.to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        change = values / runs.shift(values, 1) - 1  # against the series' previous period
    frame["price_change"] = np.where(np.isnan(change), 0.0, change)  # none on a series' first period, or without a price
    frame[schema.PROMOTION] = frame[schema.PROMOTION].astype("int8")
    return frame


def add_encodings(frame: pd.DataFrame, codes: dict[str, dict[str, int]], runs: Runs | None = None) -> pd.DataFrame:
    """Ordinal item and store codes from a fixed vocabulary (kept in the manifest, so forecasts
    encode alike); an item or store the vocabulary does not know gets -1."""
    runs = runs or Runs.of(frame)
    pairs = frame[SERIES].take(runs.first)  # one row per series, in the order of the ids
    items = [codes["item"].get(item, -1) for item in pairs[schema.ITEM]]
    stores = [codes["store"].get(store, -1) for store in pairs[schema.STORE]]
    frame["item_code"] = np.asarray(items, dtype="int32")[runs.ids]
    frame["store_code"] = np.asarray(stores, dtype="int32")[runs.ids]
    return frame


def vocabulary(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    pairs = frame[SERIES].drop_duplicates()
    series = sorted(f"{item}|{store}" for item, store in pairs.itertuples(index=False, name=None))
    return {
        "series": {key: code for code, key in enumerate(series)},
        "item": {key: code for code, key in enumerate(sorted(pairs[schema.ITEM].unique()))},
        "store": {key: code for code, key in enumerate(sorted(pairs[schema.STORE].unique()))},
    }


def known_in_advance(
    grid: pd.DataFrame,
    frequency: str,
    codes: dict[str, dict[str, int]],
    before: PriceCounts | None = None,
    runs: Runs | None = None,
) -> pd.DataFrame:
    """Calendar, price, promotion and encodings of a grid sorted by series, then date (``before``:
    the prices of each series before the grid; ``runs``: the grid's layout, when known)."""
    runs = runs or Runs.of(grid)
    frame = add_calendar(grid, frequency)
    frame = add_price_and_promotion(frame, before, runs)
    return add_encodings(frame, codes, runs)


PRIOR_COLUMNS = [*SERIES, "cut", "sum", "count", "last_price", "prices", *ENCODINGS]


def prior_table(frame: pd.DataFrame, since: str, frequency: str) -> pd.DataFrame:
    """What a windowed build needs of each series' history before its window, one row per series.

    ``frame``: a full-history feature set (:func:`build_features`). A series' ``cut`` is the
    window's start ``since`` (a grid date; ``history_needed`` periods before the model's data end),
    or earlier for a series that ends sooner: ``history_needed`` periods before its last one (so
    its last row's features are whole, and a series whose last row is before the window is still
    forecast from its own end, as with the full history).
    Before the cut: ``sum`` and ``count`` of the quantities (the running mean's totals),
    ``last_price`` (what its gaps carry on) and ``prices`` (JSON ``[[price, periods], ...]``, the
    price reference's distribution); and the series' encodings. Columns PRIOR_COLUMNS.
    """
    frame = sort_grid(frame)
    runs = Runs.of(frame)  # integer series ids: every grouping below is on them, not on the text keys
    everyone = np.arange(len(runs.first))
    period = period_number(frame[schema.DATE], frequency)
    first_period = period_number(pd.Series([pd.Timestamp(since)]), frequency)[0]
    cut = np.minimum(first_period, period[runs.last] - history_needed(frequency))  # a series' last row is its latest
    earlier = period < cut[runs.ids]
    before, before_ids = frame[earlier], runs.ids[earlier]
    table = frame.iloc[runs.first][[*SERIES, *ENCODINGS]].reset_index(drop=True)
    table["cut"] = period_dates(cut, frequency, frame[schema.DATE].iloc[0])
    totals = running_totals(before, before_ids).reindex(everyone, fill_value=0.0)
    table["sum"], table["count"] = totals["sum"].to_numpy(), totals["count"].to_numpy()
    table["last_price"] = before[schema.PRICE].groupby(before_ids, sort=False).last().reindex(everyone).to_numpy()
    table["prices"] = _price_distributions(before[schema.PRICE], before_ids).reindex(everyone).set_axis(table.index)
    return table[PRIOR_COLUMNS]


def _price_distributions(prices: pd.Series, ids: np.ndarray) -> pd.Series:
    """Per series id: JSON ``[[price, periods], ...]`` of its prices, by price (plain lists cut
    where the series changes: a pandas group per series cost 0.5 ms each)."""
    counted = prices.groupby([ids, prices.to_numpy()], sort=True).size()
    values = counted.index.get_level_values(1).to_numpy(dtype=float).tolist()
    counts = counted.to_numpy(dtype=np.int64).tolist()
    keys = counted.index.get_level_values(0).to_numpy()
    if not len(keys):  # no prices before the window (an export without prices, or nothing before it)
        return pd.Series([], dtype=object)
    starts = np.flatnonzero(changes(keys))
    bounds = zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True)
    texts = [json.dumps([[value, count] for value, count in zip(values[a:b], counts[a:b], strict=True)]) for a, b in bounds]
    return pd.Series(texts, index=keys[starts], dtype=object)


def index_prior(prior: pd.DataFrame | None) -> pd.DataFrame | None:
    """A stored :func:`prior_table` indexed by series (what the feature functions take), its cut as dates."""
    if prior is None:
        return None
    indexed = prior.assign(
        **{schema.ITEM: prior[schema.ITEM].astype(str), schema.STORE: prior[schema.STORE].astype(str)}
    ).set_index(SERIES)
    indexed["cut"] = pd.to_datetime(indexed["cut"])
    return indexed


def _started(prior: pd.DataFrame | None) -> pd.DataFrame:
    """The series of an indexed prior with periods before their cut (their grid starts at it)."""
    if prior is None:
        return pd.DataFrame(columns=["cut", "last_price"])
    return prior.loc[prior["count"] > 0, ["cut", "last_price"]]


def prior_codes(prior: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The encodings' vocabulary of an indexed prior (the full history's, which the model was fitted with)."""
    pairs = prior.index.to_frame(index=False)
    keys = sorted(pairs[schema.ITEM] + "|" + pairs[schema.STORE])  # every series of the history: its vocabulary
    return {
        "series": {key: code for code, key in enumerate(keys)},
        "item": dict(zip(pairs[schema.ITEM], prior["item_code"].astype(int), strict=True)),
        "store": dict(zip(pairs[schema.STORE], prior["store_code"].astype(int), strict=True)),
    }


def sort_grid(grid: pd.DataFrame) -> pd.DataFrame:
    """The grid sorted by series, then date (stable), with a fresh index."""
    if _is_sorted(grid):  # a grid usually is: checking neighbours is cheaper than sorting string keys
        return grid.reset_index(drop=True)
    return grid.sort_values([*SERIES, schema.DATE], kind="stable").reset_index(drop=True)


def _is_sorted(grid: pd.DataFrame) -> bool:
    """Whether every row's (item, store, date) is at least its predecessor's (the order :func:`sort_grid` makes)."""
    keys = {column: _key_values(grid[column]) for column in KEY_COLUMNS}
    try:
        ordered = np.asarray(keys[schema.DATE][1:] >= keys[schema.DATE][:-1], dtype=bool)
        for column in reversed(SERIES):  # lexicographic: a key decides only where the ones before it are equal
            after, before = keys[column][1:], keys[column][:-1]
            ordered = np.asarray(after > before, dtype=bool) | (np.asarray(after == before, dtype=bool) & ordered)
    except (TypeError, ValueError):  # keys that do not compare (unordered categories, missing values): sort
        return False
    return bool(ordered.all())


def _key_values(column: pd.Series):
    """A key column as :func:`_is_sorted` compares it: its Python objects when it holds them
    (:func:`_objects`), else its own array."""
    objects = _objects(column)
    return objects if objects is not None else column.array


def compute_features(
    grid: pd.DataFrame, frequency: str, codes: dict[str, dict[str, int]], prior: pd.DataFrame | None = None
) -> pd.DataFrame:
    """All feature families on a regular grid; returns the grid sorted by series, then date.
    ``prior`` (:func:`prior_table`, indexed by series): what came before the grid's rows."""
    frame = sort_grid(grid)
    runs = Runs.of(frame)
    before = PriceCounts.of_prior(prior, frame, runs) if prior is not None and len(prior) else None
    frame = known_in_advance(frame, frequency, codes, before, runs)
    return add_history(frame, frequency, prior, runs)


def build_features(
    clean: pd.DataFrame,
    frequency: str,
    *,
    source_fingerprint: str = "",
    known_in_advance: tuple[str, ...] | list[str] = (),
    prior: pd.DataFrame | None = None,
    inputs_only: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """The feature set and its manifest for validated rows at ``frequency`` (``D``, ``W`` or ``M``).

    Parameters
    ----------
    clean : DataFrame
        Validated rows: ``date`` (ISO text or datetime), ``item_id``, ``store_id``, ``quantity``,
        ``unit_price`` (may be NaN) and ``promotion``; other columns are ignored.
    frequency : {"D", "W", "M"}
    source_fingerprint : str, optional
        Identifies the input (default: a content hash of ``clean``).
    known_in_advance : sequence of str, optional
        The mapping's ``known_in_advance`` columns: their features are model inputs (see
        :func:`feature_names`), and the backtest plans the held-out periods with their recorded
        values (kept in the manifest).
    prior : DataFrame, optional
        A stored :func:`prior_table`: ``clean`` holds each series' rows from its ``cut`` on (see
        :func:`prior_table`); the features then continue the history before it, and the
        encodings are the prior's (the full history's).
    inputs_only : bool, optional
        Only the regular grid's :data:`BASE_COLUMNS`, sorted as the features would be: all a
        forecast reads (it computes each step's features from them, ``model.recursive_forecast``),
        so a predict run's window skips computing features no one reads. The manifest says so
        (``inputs_only``) and is otherwise the same.

    Returns
    -------
    features : DataFrame
        One row per series and period: keys, base columns, ``is_gap`` and every feature.
    manifest : dict
        Feature names, frequency, version, row and series counts, gaps, date range, the
        encodings' vocabulary and the source fingerprint.
    """
    if clean.empty:
        raise ValueError("no validated rows to build features from")
    frame = clean.copy()
    frame[schema.ITEM] = frame[schema.ITEM].astype(str)
    frame[schema.STORE] = frame[schema.STORE].fillna(schema.NO_STORE).astype(str)
    if schema.PRICE not in frame:
        frame[schema.PRICE] = np.nan
    if schema.PROMOTION not in frame:
        frame[schema.PROMOTION] = 0
    indexed = index_prior(prior)
    grid = regular_grid(frame, frequency, indexed)
    codes = vocabulary(grid) if indexed is None else prior_codes(indexed)
    features = sort_grid(grid) if inputs_only else compute_features(grid, frequency, codes, indexed)
    manifest = {
        "version": FEATURES_VERSION,
        "frequency": frequency,
        "grid_freq": grid_freq(frequency, grid[schema.DATE]),
        "features": feature_names(frequency, known_in_advance),
        "target": TARGET,
        "keys": list(KEY_COLUMNS),
        "rows": len(features),
        "series": int(series_starts(features).sum()),  # sorted by series
        "gaps": int(features["is_gap"].sum()),
        "date_range": [features[schema.DATE].min().strftime("%Y-%m-%d"), features[schema.DATE].max().strftime("%Y-%m-%d")],
        "codes": codes,
        "source_fingerprint": source_fingerprint or fingerprint(clean),
        "known_in_advance": [column for column in schema.KNOWN_IN_ADVANCE_COLUMNS if column in known_in_advance],
        **({"inputs_only": True} if inputs_only else {}),
    }
    return features, manifest


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame's canonical columns, independent of row order: the sha256 of
    the sorted 64-bit hashes of its rows (dates hashed as ISO text, so text and datetime agree)."""
    columns = [
        column
        for column in (schema.DATE, schema.ITEM, schema.STORE, schema.QUANTITY, schema.PRICE, schema.PROMOTION)
        if column in frame
    ]
    canonical = frame[columns].copy()
    if schema.DATE in canonical and pd.api.types.is_datetime64_any_dtype(canonical[schema.DATE]):
        canonical[schema.DATE] = canonical[schema.DATE].dt.strftime("%Y-%m-%d")
    for column in (schema.QUANTITY, schema.PRICE):
        if column in canonical:
            canonical[column] = canonical[column].astype("float64")
    if schema.PROMOTION in canonical:
        canonical[schema.PROMOTION] = canonical[schema.PROMOTION].astype("int64")
    rows = np.sort(pd.util.hash_pandas_object(canonical, index=False).to_numpy())
    return hashlib.sha256(",".join(columns).encode() + rows.tobytes()).hexdigest()
