"""Deterministic, realistic sample sales for tests, benchmarks and the demo.

Series (item x store) follow a level, a trend, weekly and yearly seasonality, promotions with an
uplift and price changes with an elasticity, with Poisson noise; some periods are missing (gaps).
A few invalid rows of every kind the validator knows are mixed in, and their line numbers and
expected rules are returned, so tests can check the validator against ground truth. With
``signal=False`` quantities are independent noise around a constant: nothing to learn.

A test-data generator, so it lives with the tooling, not in the functions' artifacts; it writes
the functions' CSV contract (``item_prediction.domain.schema``: functions/ on ``sys.path``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from item_prediction.domain import schema

# Export-style column names for the "user's own CSV" demo (with the mapping file that reads them).
RENAMED_COLUMNS = {
    schema.DATE: "Order Date",
    schema.ITEM: "SKU",
    schema.QUANTITY: "Units Sold",
    schema.STORE: "Shop",
    schema.PRICE: "Price",
    schema.PROMOTION: "On Promo",
}

# One invalid row per kind: (rule the validator must report, how to break a valid row).
INVALID_KINDS = (
    ("negative_quantity", {schema.QUANTITY: "-3"}),
    ("absurd_quantity", {schema.QUANTITY: str(schema.MAX_QUANTITY * 10)}),
    ("invalid_quantity", {schema.QUANTITY: "lots"}),
    ("invalid_date", {schema.DATE: "31/31/2024"}),
    ("future_date", {schema.DATE: "2999-01-01"}),
    ("date_out_of_range", {schema.DATE: "1900-01-01"}),
    ("missing_item_id", {schema.ITEM: ""}),
    ("missing_quantity", {schema.QUANTITY: ""}),
    ("missing_store_id", {schema.STORE: "NULL"}),
    ("invalid_price", {schema.PRICE: "cheap"}),
    ("non_positive_price", {schema.PRICE: "0"}),
    ("absurd_price", {schema.PRICE: "99999999"}),
    ("invalid_promotion", {schema.PROMOTION: "maybe"}),
    ("invalid_id", {schema.ITEM: "X" * (schema.MAX_ID_LENGTH + 1)}),
)


@dataclass
class SampleData:
    """A generated file and what the validator should make of it."""

    content: bytes
    frame: pd.DataFrame  # the valid rows, canonical names
    invalid_lines: dict[int, str] = field(default_factory=dict)  # physical line -> expected rule
    frequency: str = "D"
    mapping_json: str | None = None

    @property
    def rows(self) -> int:
        return len(self.frame) + len(self.invalid_lines)


def _series_frame(
    rng: np.random.Generator, item: str, store: str, dates: pd.DatetimeIndex, frequency: str, signal: bool
) -> pd.DataFrame:
    n = len(dates)
    level = rng.lognormal(mean=2.5, sigma=0.5)
    base_price = round(float(rng.uniform(1.0, 20.0)), 2)
    price = np.full(n, base_price)
    for change in rng.choice(n, size=max(1, n // 120), replace=False):
        price[change:] = round(float(price[change] * rng.uniform(0.8, 1.2)), 2)
    promotion = (rng.random(n) < 0.08).astype(int)
    if signal:
        t = np.arange(n)
        per_year = 365.25 if frequency == "D" else 52.18
        weekly = np.array([0.8, 0.85, 0.9, 1.0, 1.2, 1.5, 1.3])[dates.day_of_week] if frequency == "D" else 1.0
        yearly = 1 + 0.3 * np.sin(2 * np.pi * t / per_year + rng.uniform(0, 2 * np.pi))
        trend = 1 + 0.4 * t / max(n, 1)
        elasticity = (price / base_price) ** -1.5
        mean = level * weekly * yearly * trend * elasticity * np.where(promotion == 1, 1.6, 1.0)
    else:
        mean = np.full(n, level)
    quantity = rng.poisson(mean)
    return pd.DataFrame(
        {
            schema.DATE: dates.strftime("%Y-%m-%d"),
            schema.ITEM: item,
            schema.STORE: store,
            schema.QUANTITY: quantity,
            schema.PRICE: price,
            schema.PROMOTION: promotion,
        }
    )


def generate_sales(
    *,
    items: int = 4,
    stores: int = 2,
    periods: int = 400,
    frequency: str = "D",
    start: str = "2023-01-02",
    seed: int = 0,
    signal: bool = True,
    gap_rate: float = 0.02,
    invalid: bool = True,
    column_names: dict[str, str] | None = None,
    delimiter: str = ",",
) -> SampleData:
    """Make a sales file; ``column_names`` renames our columns (and returns the mapping file for them)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=periods, freq="D" if frequency == "D" else "W-MON")
    frames = [
        _series_frame(rng, f"ITEM-{i:03d}", f"STORE-{s:02d}", dates, frequency, signal)
        for i in range(items)
        for s in range(stores)
    ]
    valid = pd.concat(frames, ignore_index=True)
    valid = valid[rng.random(len(valid)) >= gap_rate].reset_index(drop=True)  # gaps: missing periods

    header = list(valid.columns)
    records = [[str(value) for value in row] for row in valid.itertuples(index=False)]
    invalid_rows: list[tuple[int, list[str], str]] = []
    if invalid:
        for rule, change in INVALID_KINDS:
            row = dict(zip(header, records[int(rng.integers(len(records)))], strict=True))
            row.update(change)
            invalid_rows.append((int(rng.integers(len(records))), [row[c] for c in header], rule))
        source = int(rng.integers(len(records) // 2))
        invalid_rows.append((len(records), list(records[source]), "duplicate_key"))  # after its original
        invalid_rows.append((int(rng.integers(len(records))), records[0][:3], "field_count"))

    lines: list[list[str]] = [records[i] for i in range(len(records))]
    invalid_lines: dict[int, str] = {}
    for position, row, rule in sorted(invalid_rows, key=lambda item: item[0], reverse=True):
        lines.insert(position, row)
        invalid_lines[id(row)] = rule
    numbered = {}
    for offset, row in enumerate(lines):
        if id(row) in invalid_lines:
            numbered[offset + 2] = invalid_lines[id(row)]  # line 1 is the header

    names = [(column_names or {}).get(column, column) for column in header]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(lines)
    mapping = None
    if column_names:
        import json

        mapping = json.dumps({"columns": dict(column_names), "frequency": frequency}, indent=2)
    return SampleData(buffer.getvalue().encode("utf-8"), valid, numbered, frequency, mapping)
