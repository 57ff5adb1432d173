"""Writes a run's forecast report (:mod:`item_prediction.domain.report`) and names it in CURRENT.

The page goes to ``reports/<dataset>/<forecast_id>/report.html`` (next to the dataset's validation
reports, under the same retention); the dataset's CURRENT pointer then gains ``report_key``, which
the read API's ``GET /datasets/{dataset}/report`` links to. Called after the flip: the forecast is
served first, the report follows a moment later (a pointer without ``report_key`` answers 404).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from ..aws import table_keys
from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import report, schema

MAX_VALIDATION_REPORTS = 1000  # a dataset's uploads counted into the report's "rows in" (bounded reads)
COUNTS = ("rows_in", "rows_clean", "rows_quarantined")


def validation_totals(storage: Storage, settings: Settings, dataset: str) -> dict:
    """Rows in, clean and quarantined (by reason) over the dataset's validation reports (its uploads)."""
    keys = [key for key in storage.list_keys(f"{settings.reports_prefix}{dataset}/") if key.endswith(".validation.json")]
    totals = {**dict.fromkeys(COUNTS, 0), "rules": {}, "files": min(len(keys), MAX_VALIDATION_REPORTS)}
    for key in keys[:MAX_VALIDATION_REPORTS]:
        document = storage.get_json(key)
        for count in COUNTS:
            totals[count] += int(document.get(count) or 0)
        for reason, rows in (document.get("rules") or {}).items():
            totals["rules"][reason] = totals["rules"].get(reason, 0) + int(rows)
    return totals


def report_key(settings: Settings, dataset: str, forecast_id: str) -> str:
    return f"{settings.reports_prefix}{dataset}/{forecast_id}/report.html"


def publish_report(
    storage: Storage,
    settings: Settings,
    dataset: str,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    run: dict,
    *,
    backtest: pd.DataFrame | None = None,
    timer: StepTimer | None = None,
) -> str:
    """Render and store the page, then add its key to CURRENT (``run``: the published pointer plus
    ``frequency``, ``series`` and ``metrics``); timed as ``report``. Returns the page's key."""
    timer = timer or StepTimer()
    with timer("report"):
        pointer = {
            key: run[key]
            for key in ("forecast_id", "model_version", "model_key", "predictions_key", "horizon", "forecast_range", "updated_at")
        }
        summary = {
            **pointer,
            "dataset": dataset,
            "frequency": run["frequency"],
            "series": run["series"],
            "metrics": run["metrics"],
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "validation": validation_totals(storage, settings, dataset),
        }
        columns = [schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]
        page = report.render_report(summary, history[columns], backtest, forecast)
        key = storage.put_bytes(report_key(settings, dataset, run["forecast_id"]), page.encode(), "text/html; charset=utf-8")
        storage.put_item({**table_keys.current_key(dataset), **pointer, "dataset": dataset, "report_key": key})
    return key
