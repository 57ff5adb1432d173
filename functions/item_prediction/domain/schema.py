"""The input contract: one source of truth for columns, types, limits and column mappings.

A sales file has one row per item (optionally per store) per period: a date, an item id and a
quantity sold; optionally a store id, a unit price and a promotion flag. Other columns are kept
as they are. Real exports never use our names, so a small JSON mapping file renames theirs::

    {"columns": {"date": "Order Date", "item_id": "SKU", "quantity": "Units Sold",
                 "store_id": "Shop", "unit_price": "Price", "promotion": "On Promo"},
     "frequency": "D", "date_format": null, "dayfirst": true, "decimal": ",",
     "known_in_advance": ["unit_price", "promotion"]}

Every key is optional: unmapped columns are looked up under our own names (case- and
whitespace-insensitively); ``frequency`` (``D`` daily, ``W`` weekly or ``M`` monthly) is inferred from
the data when absent; ``date_format`` (a ``strftime`` format) makes date parsing strict to that format;
``dayfirst`` settles numeric dates such as ``01/02/2024`` (inferred from the data when absent);
``decimal`` is the decimal mark of numbers (default: ``.``, and ``,`` is also accepted in
files not delimited by commas, as European exports write ``2,50``); ``known_in_advance`` lists
the columns whose future values the user supplies in a plan file (``unit_price``,
``promotion``): the backtest then takes the held-out periods' recorded values as the plan, and
forecasts take them from the plan file (:mod:`item_prediction.domain.plan`).

Where the mapping comes from (first found wins): the ``mapping_key`` of the event, then
``raw/<dataset>/_mapping.json`` next to the data, then ``config/mappings/<dataset>.json``, then
``config/mappings/default.json``; without any, names are taken as they are (identity).
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
DATASET_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # dataset names (raw/<dataset>/...): safe in S3 keys and DynamoDB keys

# Plausibility limits: values outside them are data errors, not demand.
MAX_QUANTITY = 1_000_000
MAX_UNIT_PRICE = 1_000_000.0
MAX_ID_LENGTH = 128
EARLIEST_DATE = "1990-01-01"
# Days a date may lie after the function's (UTC) today: an upload made early in the morning in a
# time zone ahead of UTC carries "today" in local time.
FUTURE_TOLERANCE_DAYS = 1

# Values that mean "no value" in real exports (compared case-insensitively, after stripping).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a"})
TRUE_VALUES = frozenset({"1", "1.0", "true", "t", "yes", "y", "promo", "on"})
FALSE_VALUES = frozenset({"0", "0.0", "false", "f", "no", "n", "off"})

KNOWN_IN_ADVANCE_COLUMNS = (PRICE, PROMOTION)  # the columns a plan file may give for future periods
FREQUENCIES = {"D": "daily", "W": "weekly", "M": "monthly"}
SEASON_LENGTH = {"D": 7, "W": 52, "M": 12}
DEFAULT_HORIZON = {"D": 14, "W": 8, "M": 6}

# Series shards (domain/shards.py). A shard's rows bound the memory of its FeatureEngineering and
# Predictions invocations, which grows by about 0.5 KB per row: a single shard of 2.5 M M5-shaped
# daily rows peaked at 1,276 MB in FeatureEngineering (of 2,048) and 1,783 MB in Predictions (of
# 3,008), so SHARD_MAX_ROWS keeps both near half their memory size. A shard also costs the same
# whatever its size on every run (two invocations, their clients and lease, its manifest, plan,
# model and listing reads, a child execution): aiming at 500,000 rows a 3 M-row dataset ran as 8
# shards, and as 4 its week's upload costs a quarter less compute (4.25 -> 3.26 s). So shards aim
# large, up to where a 3 M-row dataset still runs as 4 (docs/scaling.md, "Shard size").
SHARD_TARGET_ROWS = 1_250_000  # a new split aims at this many rows per shard
SHARD_MAX_ROWS = 2_000_000  # a shard growing past this doubles the dataset's shard count
MAX_SHARDS = 16_384


class MappingError(ValueError):
    """A mapping file that cannot be used, with a message for the user."""


@dataclass(frozen=True)
class ColumnMapping:
    """How a user's file maps onto the canonical columns."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source column name
    frequency: str | None = None
    date_format: str | None = None
    dayfirst: bool | None = None  # None: inferred from the data
    decimal: str | None = None  # None: "." (and "," in files not delimited by commas)
    known_in_advance: tuple[str, ...] = ()  # canonical columns whose future values a plan file gives

    @classmethod
    def identity(cls) -> ColumnMapping:
        return cls()

    @classmethod
    def from_json(cls, text: str | bytes) -> ColumnMapping:
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MappingError(f"mapping file is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise MappingError("mapping file must hold a JSON object")
        unknown = set(raw) - {"columns", "frequency", "date_format", "dayfirst", "decimal", "known_in_advance"}
        if unknown:
            raise MappingError(f"mapping file has unknown keys: {sorted(unknown)}")
        columns = raw.get("columns", {})
        if not isinstance(columns, dict) or not all(isinstance(v, str) and v for v in columns.values()):
            raise MappingError("mapping 'columns' must map canonical names to non-empty column names")
        bad = set(columns) - set(CANONICAL_COLUMNS)
        if bad:
            raise MappingError(f"mapping names unknown canonical columns {sorted(bad)}; known: {list(CANONICAL_COLUMNS)}")
        if len({name.strip().lower() for name in columns.values()}) != len(columns):
            raise MappingError("mapping uses one source column for two canonical columns")
        frequency = raw.get("frequency")
        if frequency not in (None, *FREQUENCIES):
            raise MappingError(f"mapping 'frequency' must be one of {list(FREQUENCIES)} or null")
        date_format = raw.get("date_format")
        if date_format is not None and (not isinstance(date_format, str) or "%" not in date_format):
            raise MappingError("mapping 'date_format' must be a strftime format such as '%d.%m.%Y', or null")
        dayfirst = raw.get("dayfirst")
        if dayfirst is not None and not isinstance(dayfirst, bool):
            raise MappingError("mapping 'dayfirst' must be true, false or null")
        decimal = raw.get("decimal")
        if decimal not in (None, ".", ","):
            raise MappingError("mapping 'decimal' must be '.' or ',' or null")
        known = raw.get("known_in_advance") or []
        if not isinstance(known, list) or not set(known) <= set(KNOWN_IN_ADVANCE_COLUMNS) or len(set(known)) != len(known):
            raise MappingError(
                f"mapping 'known_in_advance' must be a list of distinct names among {list(KNOWN_IN_ADVANCE_COLUMNS)}"
            )
        return cls(
            columns=dict(columns),
            frequency=frequency,
            date_format=date_format,
            dayfirst=dayfirst,
            decimal=decimal,
            known_in_advance=tuple(known),
        )

    def describe(self) -> dict:
        """The mapping as the report shows it."""
        return {
            "columns": self.columns,
            "frequency": self.frequency,
            "date_format": self.date_format,
            "dayfirst": self.dayfirst,
            "decimal": self.decimal,
            "known_in_advance": list(self.known_in_advance),
        }

    def rename_header(self, header: list[str]) -> tuple[list[str], list[str]]:
        """Rename a file's header to canonical names; return (new header, missing required columns).

        Source names match case- and whitespace-insensitively, as exports vary in both. Every
        column that matches a canonical column's source name is renamed, so two such columns
        (``Units`` and ``units ``) both read as ``quantity`` and the header has that name twice:
        the caller refuses the file rather than guess which one was meant. A name the mapping
        gives a canonical column explicitly wins over our own name of another one. Columns
        without a name (a trailing delimiter) are called ``unnamed_<position>``.
        """
        renamed = [name.strip() or f"unnamed_{index + 1}" for index, name in enumerate(header)]
        sources = {canonical: canonical for canonical in CANONICAL_COLUMNS if canonical not in self.columns}
        sources |= {source.strip().lower(): canonical for canonical, source in self.columns.items()}
        renamed = [sources.get(name.lower(), name) for name in renamed]
        missing = [column for column in REQUIRED_COLUMNS if column not in renamed]
        return renamed, missing
