"""Writes a run's forecast report (:mod:`item_prediction.domain.report`).

The page goes to ``reports/<dataset>/<run_id>/report.html`` (next to the dataset's validation
reports, under the same retention) and the dataset's CURRENT pointer names it as ``report_key``,
which the read API's ``GET /datasets/{dataset}/report`` links to.

In the sharded pipeline each shard's Predict writes its slice of the report (:func:`write_slice`:
``runs/<ds>/<run_id>/report/shard=<s:05d>.json``, small: the shard's totals by date, the stats of
the series its tables may show and the rows of its at most 12 chart candidates), and the Aggregate
step merges the slices of every shard of the generation into the page (:func:`publish_run_report`)
before its flip, which carries ``report_key``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import report, schema
from . import shard_store

SLICE_SECTIONS = ("stats", "history", "backtest", "forecast", "total_history", "total_backtest", "total_forecast")
MAX_REPORT_SLICES = 1024  # shards merged into one page (the largest by series); each read is ~0.1-0.3 MB
MAX_VALIDATION_REPORTS = 1000  # a dataset's uploads counted into the report's "rows in" (bounded reads)
COUNTS = ("rows_in", "rows_clean", "rows_quarantined")
HISTORY_COLUMNS = (schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY)  # what a slice's history needs


def validation_totals(storage: Storage, settings: Settings, dataset: str) -> dict:
    """Rows in, clean and quarantined (by reason) over the dataset's validation reports (its uploads;
    the first MAX_VALIDATION_REPORTS by key).

    Each report's counts are kept in the dataset's ``_validation-counts.json`` beside the reports,
    under the report's ETag: a run reads only the reports that are new or rewritten since the last
    one (a weekly dataset gains one a week; reading them all made every run's cost grow with the
    dataset's age), and a report deleted drops out with the listing. A cache that cannot be read is
    rebuilt from the reports, so the totals are always those of the reports themselves.
    """
    prefix = f"{settings.reports_prefix}{dataset}/"
    listed = [entry for entry in storage.list_objects(prefix) if entry["key"].endswith(".validation.json")]
    cache_key = f"{prefix}{COUNTS_CACHE}"
    cached = _read_counts(storage, cache_key)
    counted = {}
    for entry in listed[:MAX_VALIDATION_REPORTS]:
        known = cached.get(entry["key"])
        fresh = known is not None and known.get("etag") == entry.get("etag")
        counted[entry["key"]] = known if fresh else {"etag": entry.get("etag"), **_counts(storage.get_json(entry["key"]))}
    if counted != cached:
        storage.put_json(cache_key, {"format": 1, "reports": counted})
    totals = {**dict.fromkeys(COUNTS, 0), "rules": {}, "files": len(counted)}
    for counts in counted.values():
        for count in COUNTS:
            totals[count] += counts[count]
        for reason, rows in counts["rules"].items():
            totals["rules"][reason] = totals["rules"].get(reason, 0) + rows
    return totals


COUNTS_CACHE = "_validation-counts.json"  # beside the reports; not a report (no .validation.json suffix)


def _counts(document: dict) -> dict:
    """What the totals take of one validation report."""
    rules = {reason: int(rows) for reason, rows in (document.get("rules") or {}).items()}
    return {**{count: int(document.get(count) or 0) for count in COUNTS}, "rules": rules}


def _read_counts(storage: Storage, key: str) -> dict:
    """The cached counts by report key; empty when there are none yet or they cannot be read."""
    try:
        document = storage.get_json_if_any(key, {})
    except ValueError:  # not JSON: rebuilt from the reports
        return {}
    reports = document.get("reports") if isinstance(document, dict) and document.get("format") == 1 else None
    return {key: value for key, value in (reports or {}).items() if _well_formed(value)} if isinstance(reports, dict) else {}


def _well_formed(entry) -> bool:
    """A cached entry the totals can use as it is (anything else is read again from its report)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("rules"), dict):
        return False
    return all(isinstance(entry.get(count), int) for count in COUNTS)


def report_key(settings: Settings, dataset: str, forecast_id: str) -> str:
    return f"{settings.reports_prefix}{dataset}/{forecast_id}/report.html"


def backtest_frame(rows: pd.DataFrame | None) -> pd.DataFrame | None:
    """The columns of a backtest's scored rows the report shows (the band when the model gives one)."""
    if rows is None:
        return None
    wanted = [*report.BACKTEST_COLUMNS, *(column for column in ("p10", "p90") if column in rows.columns)]
    return rows[wanted]


def slice_key(dataset: str, run_id: str, shard: int) -> str:
    return f"runs/{dataset}/{run_id}/report/shard={shard:05d}.json"


def _encode(frame: pd.DataFrame | None) -> dict | None:
    """A frame as JSON: columns and rows, dates ISO, NaN as null (column by column: a third of the
    cost of converting the whole frame to objects)."""
    if frame is None:
        return None
    values = []
    for name in frame.columns:
        column = frame[name].dt.strftime("%Y-%m-%d") if name == schema.DATE else frame[name]
        missing = column.isna().to_numpy()
        values.append([None if gone else value for value, gone in zip(column.tolist(), missing, strict=True)])
    return {"columns": list(frame.columns), "rows": [list(row) for row in zip(*values, strict=True)]}


def _decode(document: dict | None) -> pd.DataFrame | None:
    """:func:`_encode` read back: ids as strings, dates as datetimes, every other column float."""
    if document is None:
        return None
    frame = pd.DataFrame(document["rows"], columns=document["columns"], dtype=object)
    for column in frame.columns:
        if column in (schema.ITEM, schema.STORE):
            frame[column] = frame[column].astype(str)
        else:
            frame[column] = pd.to_datetime(frame[column]) if column == schema.DATE else frame[column].astype(float)
    return frame


def report_history(storage: Storage, settings: Settings, item: dict, frame: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The shard's history for its slice: its feature rows; or, when they hold only the recent
    window (``manifest["since"]``: a predict run), its validated rows over the periods the page shows
    (a year and more: the dataset chart, the change against last year), read one row group at a time,
    coded: ids as pandas Categoricals (:func:`report.report_data` takes them as it takes text)."""
    if not manifest.get("since"):
        return frame
    start = report.history_start(frame[schema.DATE].max(), manifest["frequency"]).strftime("%Y-%m-%d")
    dataset, count, shard = item["dataset"], item["shard_count"], item["shard"]
    ends = item.get("part_ends")  # the Plan's: parts whose rows end before the year shown are not read
    rows, _ = shard_store.load_shard(
        storage, settings, dataset, count, shard, since=start, columns=HISTORY_COLUMNS, coded=True, ends=ends
    )
    return _dated(rows)


def _dated(rows: pd.DataFrame) -> pd.DataFrame:
    """Stored history rows with their ISO dates parsed by numpy into ``datetime64[us]``, as
    ``pd.to_datetime`` gives them, at less than half its cost (a date column has no other format);
    coded dates are parsed once per distinct date."""
    dates = rows[schema.DATE].array
    if isinstance(dates, pd.Categorical):
        days = np.append(_days(dates.categories.to_numpy(dtype=object)), np.datetime64("NaT", "us"))
        return rows.assign(**{schema.DATE: days[dates.codes]})  # code -1 (no date): NaT
    return rows.assign(**{schema.DATE: _days(rows[schema.DATE].to_numpy(dtype=object))})


def _days(text: np.ndarray) -> np.ndarray:
    return text.astype("datetime64[D]").astype("datetime64[us]")


def write_slice(storage: Storage, key: str, history, backtest, forecast, frequency: str, meta: dict) -> str:
    """One shard's slice of the run's report (:func:`report.report_data` of its series) plus ``meta``
    (``shard``, ``run_id``, ``backtested``: False when the shard forecast with its latest model)."""
    columns = [schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]
    data = report.report_data(history[columns], backtest_frame(backtest), forecast, frequency)
    return storage.put_json(key, {**meta, "frequency": frequency, **{name: _encode(data[name]) for name in SLICE_SECTIONS}})


def read_slice(storage: Storage, key: str) -> tuple[dict, dict] | None:
    """(the slice's report data, its meta fields), or None when the slice is gone."""
    document = storage.get_json_if_any(key)
    if document is None:
        return None
    data = {name: _decode(document.get(name)) for name in SLICE_SECTIONS}
    return data, {name: value for name, value in document.items() if name not in SLICE_SECTIONS}


def _notes(stale: int, read: int, total: int, missing: int) -> list[str]:
    """What the page says when it is not the whole generation's latest backtest."""
    notes = [f"The report slices of {missing} shards no longer exist: their series are not shown."] if missing else []
    if stale:
        notes.append(
            f"{stale} of {read} shards forecast with their latest model: the accuracy above counts that model's "
            "backtest from its training run; their series have no backtest rows in the charts and tables."
        )
    if total > MAX_REPORT_SLICES:
        notes.append(f"Charts, tables and totals from the {MAX_REPORT_SLICES} largest of {total} shards (by series).")
    return notes


def publish_run_report(storage: Storage, settings: Settings, summary: dict, slices: list[str]) -> str | None:
    """Merge the shards' slices (one at a time: memory holds two) and store the page; its key, None
    without slices. ``slices``: keys, largest shard first; ``summary`` as for the page, with
    ``dataset``, ``forecast_id`` (the run id) and ``frequency``."""
    data, stale, missing = None, 0, 0
    for key in slices[:MAX_REPORT_SLICES]:
        read = read_slice(storage, key)
        if read is None:  # deleted by hand: the page goes on without that shard's series
            missing += 1
            continue
        part, meta = read
        stale += not meta.get("backtested")
        data = part if data is None else report.merge_data([data, part], summary["frequency"])
    if data is None:
        return None
    metrics = dict(summary.get("metrics") or {})
    if "cutoff" not in metrics and data["total_backtest"] is not None:
        metrics["cutoff"] = data["total_backtest"][schema.DATE].min().strftime("%Y-%m-%d")
    notes = _notes(stale, min(len(slices), MAX_REPORT_SLICES) - missing, len(slices), missing)
    validation = validation_totals(storage, settings, summary["dataset"])
    page = report.render_data({**summary, "metrics": metrics, "notes": notes, "validation": validation}, data)
    key = report_key(settings, summary["dataset"], summary["forecast_id"])
    return storage.put_bytes(key, page.encode(), "text/html; charset=utf-8")
