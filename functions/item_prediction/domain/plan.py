"""A plan file: the future prices and promotions the user commits to (known-in-advance covariates).

It has the sales file's layout without quantities: ``date``, ``item_id``, optionally ``store_id``,
and ``unit_price`` and/or ``promotion``, under the same column mapping (so an export's own names
work). Dates are read like the sales file's (:class:`~item_prediction.domain.dates.DateReader`)
and moved to the start of their period at the dataset's frequency; rows of one series in one
period are combined as the sales grid combines them (mean price, promotion if any row has one).

A file that cannot serve as a plan is refused with one named reason (:class:`PlanError`); a row
with an invalid value is left out of the plan and counted under its reason in the report, so
every row is accounted for. Periods and series that the plan does not list keep the assumption
(last price, no promotion): see :func:`item_prediction.ml.model.future_periods`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import features, schema
from .dates import DateReader
from .schema import ColumnMapping

PLAN_FILE = "file"  # the forecast used a plan file
PLAN_ASSUMED = "assumed_last_price_no_promotion"  # no plan: each series' last price, no promotion


class PlanError(ValueError):
    """A plan file that cannot be used: ``reason`` names why, the message says it for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _numbers(texts: pd.Series, decimal: str | None) -> pd.Series:
    cleaned = texts.str.strip()
    if decimal == ",":
        cleaned = cleaned.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(cleaned, errors="coerce")


def _flags(texts: pd.Series) -> pd.Series:
    lowered = texts.str.strip().str.lower()
    return pd.Series(
        np.where(lowered.isin(schema.TRUE_VALUES), 1.0, np.where(lowered.isin(schema.FALSE_VALUES), 0.0, np.nan)),
        index=texts.index,
    )


def _columns(raw: pd.DataFrame, mapping: ColumnMapping) -> tuple[pd.DataFrame, list[str]]:
    """The raw frame under canonical names, and the planned columns it has."""
    renamed, missing = mapping.rename_header([str(name) for name in raw.columns])
    missing = [column for column in missing if column != schema.QUANTITY]
    if missing:
        raise PlanError("missing_columns", f"the plan file has no {' and no '.join(missing)} column")
    if len(set(renamed)) != len(renamed):
        raise PlanError("duplicate_columns", "the plan file names one column twice")
    frame = raw.set_axis(renamed, axis=1).astype("string").fillna("")
    planned = [column for column in schema.KNOWN_IN_ADVANCE_COLUMNS if column in frame]
    if not planned:
        raise PlanError("no_planned_columns", f"the plan file has none of the columns {list(schema.KNOWN_IN_ADVANCE_COLUMNS)}")
    return frame, planned


def read_plan(raw: pd.DataFrame, mapping: ColumnMapping, frequency: str, grid_freq: str) -> tuple[pd.DataFrame, dict]:
    """The plan as (frame, report).

    ``raw``: the plan file as read (text cells, its own header); ``frequency`` and ``grid_freq``:
    the dataset's (the feature manifest's), so periods line up with the model's grid. The frame
    has ``date`` (period start), ``item_id``, ``store_id`` and the planned columns; the report
    ``rows_in``, ``rows_used``, ``rejected`` (reason -> rows), ``columns`` and ``series``.
    """
    frame, planned = _columns(raw, mapping)
    texts = frame[schema.DATE].str.strip()
    dates = texts.map(DateReader(mapping.date_format, mapping.dayfirst).parse(texts))
    checks = {
        "invalid_date": dates.isna(),
        "missing_item_id": frame[schema.ITEM].str.strip().eq(""),
    }
    plan = pd.DataFrame({schema.DATE: pd.to_datetime(dates), schema.ITEM: frame[schema.ITEM].str.strip()})
    store = frame[schema.STORE].str.strip() if schema.STORE in frame else pd.Series("", index=frame.index)
    plan[schema.STORE] = store.where(~store.str.lower().isin(schema.MISSING_TOKENS), schema.NO_STORE).astype(object)
    if schema.PRICE in planned:
        plan[schema.PRICE] = _numbers(frame[schema.PRICE], mapping.decimal)
        checks["invalid_price"] = ~plan[schema.PRICE].between(0, schema.MAX_UNIT_PRICE, inclusive="right")
    if schema.PROMOTION in planned:
        plan[schema.PROMOTION] = _flags(frame[schema.PROMOTION])
        checks["invalid_promotion"] = plan[schema.PROMOTION].isna()
    rejected, bad = {}, np.zeros(len(frame), dtype=bool)
    for reason, failed in checks.items():  # each row counted once, under its first failed check
        failed = np.asarray(pd.Series(failed).fillna(True), dtype=bool)
        count = int((failed & ~bad).sum())
        if count:
            rejected[reason] = count
        bad |= failed
    plan = plan[~bad].astype({schema.ITEM: object})
    plan[schema.DATE] = features.to_period_start(plan[schema.DATE], frequency, grid_freq)
    plan = plan.groupby([schema.DATE, schema.ITEM, schema.STORE], as_index=False, sort=True).agg(
        {column: ("max" if column == schema.PROMOTION else "mean") for column in planned}
    )
    if schema.PROMOTION in plan:
        plan[schema.PROMOTION] = plan[schema.PROMOTION].astype("int8")
    report = {
        "rows_in": len(frame),
        "rows_used": int((~bad).sum()),
        "rejected": rejected,
        "columns": planned,
        "series": int(plan.groupby([schema.ITEM, schema.STORE]).ngroups),
        "periods": len(plan),
    }
    return plan, report
