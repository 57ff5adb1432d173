"""The input contract: one source of truth for columns, types, limits and column mappings.

A sales file has one row per item (optionally per store) per period: a date, an item id and a
quantity sold; optionally a store id, a unit price and a promotion flag. Other columns are kept
as they are. Real exports never use our names, so a small JSON mapping file renames theirs::

    {"columns": {"date": "Order Date", "item_id": "SKU", "quantity": "Units Sold",
                 "store_id": "Shop", "unit_price": "Price", "promotion": "On Promo"},
     "frequency": "D", "date_format": "%d/%m/%Y", "dayfirst": true}

Every key is optional: unmapped columns are looked up under our own names, the frequency
(``D`` daily or ``W`` weekly) is inferred from the data when absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

DATE = "date"
ITEM = "item_id"
STORE = "store_id"
QUANTITY = "quantity"
PRICE = "unit_price"
PROMOTION = "promotion"

REQUIRED_COLUMNS = (DATE, ITEM, QUANTITY)
OPTIONAL_COLUMNS = (STORE, PRICE, PROMOTION)
CANONICAL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
SERIES_KEY = (ITEM, STORE)
ROW_KEY = (ITEM, STORE, DATE)
NO_STORE = "_"  # the store of series that have none, in keys and outputs

# Plausibility limits: values outside them are data errors, not demand.
MAX_QUANTITY = 1_000_000
MAX_UNIT_PRICE = 1_000_000.0
MAX_ID_LENGTH = 128
EARLIEST_DATE = "1990-01-01"

TRUE_VALUES = frozenset({"1", "true", "t", "yes", "y", "promo", "on"})
FALSE_VALUES = frozenset({"0", "false", "f", "no", "n", "off", ""})

FREQUENCIES = {"D": "daily", "W": "weekly"}
SEASON_LENGTH = {"D": 7, "W": 52}
DEFAULT_HORIZON = {"D": 14, "W": 8}


class MappingError(ValueError):
    """A mapping file that cannot be used, with a message for the user."""


@dataclass(frozen=True)
class ColumnMapping:
    """How a user's file maps onto the canonical columns."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source column name
    frequency: str | None = None
    date_format: str | None = None
    dayfirst: bool = False

    @classmethod
    def identity(cls) -> "ColumnMapping":
        return cls()

    @classmethod
    def from_json(cls, text: str | bytes) -> "ColumnMapping":
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MappingError(f"mapping file is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise MappingError("mapping file must hold a JSON object")
        unknown = set(raw) - {"columns", "frequency", "date_format", "dayfirst"}
        if unknown:
            raise MappingError(f"mapping file has unknown keys: {sorted(unknown)}")
        columns = raw.get("columns", {})
        if not isinstance(columns, dict) or not all(isinstance(v, str) and v for v in columns.values()):
            raise MappingError("mapping 'columns' must map canonical names to non-empty column names")
        bad = set(columns) - set(CANONICAL_COLUMNS)
        if bad:
            raise MappingError(f"mapping names unknown canonical columns {sorted(bad)}; known: {list(CANONICAL_COLUMNS)}")
        if len(set(columns.values())) != len(columns):
            raise MappingError("mapping uses one source column for two canonical columns")
        frequency = raw.get("frequency")
        if frequency not in (None, *FREQUENCIES):
            raise MappingError(f"mapping 'frequency' must be one of {list(FREQUENCIES)} or null")
        return cls(columns=dict(columns), frequency=frequency, date_format=raw.get("date_format"), dayfirst=bool(raw.get("dayfirst", False)))

    def rename_header(self, header: list[str]) -> tuple[list[str], list[str]]:
        """Rename a file's header to canonical names; return (new header, missing required columns).

        Source names match case- and whitespace-insensitively, as exports vary in both.
        """
        normalized = {name.strip().lower(): index for index, name in enumerate(header)}
        renamed = [name.strip() for name in header]
        for canonical in CANONICAL_COLUMNS:
            source = self.columns.get(canonical, canonical)
            index = normalized.get(source.strip().lower())
            if index is not None:
                renamed[index] = canonical
        missing = [column for column in REQUIRED_COLUMNS if column not in renamed]
        return renamed, missing
