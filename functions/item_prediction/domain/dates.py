"""Reading a file's date column: strict, consistent across the whole file, time-zone safe.

pandas parses what it can in bulk (ISO 8601, ``YYYYMMDD``, or the mapping's ``date_format``);
python-dateutil reads the rest ("3 March 2024", "Mar 4, 2024"), but only when the text names a
day, a month and a year: dateutil would otherwise fill gaps from today's date, turning "3" or
"May" into a date. Numeric dates like ``01/02/2024`` are ambiguous; the order (day-first or
month-first) is decided once per file, from the first values that settle it (a number above 12),
or from the mapping's ``dayfirst``, and values that contradict it are invalid rather than
silently read the other way round. A date with a time and a UTC offset keeps the calendar date
written in the file (the shop's local date), whatever the offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd
from dateutil import parser as date_parser

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:$|[T ]\d)")
COMPACT_DATE = re.compile(r"^\d{8}$")
NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})$")
UTC_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")  # after a time only

# Two defaults that differ in year, month and day: a component dateutil took from the default
# (because the text does not have it) shows up as a difference between the two parses.
_DEFAULTS = (datetime(2001, 1, 1), datetime(2002, 2, 2))


def _to_dates(texts: list[str], fmt: str) -> list[date | None]:
    """pandas in bulk; offsets are dropped (wall-clock date as written) when they are mixed."""
    if not texts:
        return []
    try:
        parsed = pd.to_datetime(pd.Index(texts, dtype=object), format=fmt, errors="coerce")
    except (ValueError, TypeError, OverflowError):  # mixed UTC offsets, or naive mixed with aware
        stripped = [UTC_OFFSET.sub(r"\1", text) for text in texts]
        try:
            parsed = pd.to_datetime(pd.Index(stripped, dtype=object), format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            return [None] * len(texts)
    if getattr(parsed, "tz", None) is not None:
        parsed = parsed.tz_localize(None)
    return [None if pd.isna(value) else value.date() for value in parsed]


def _complete_dateutil(text: str, dayfirst: bool) -> date | None:
    """dateutil's reading of ``text``, only if the text itself gives day, month and year."""
    try:
        first, second = (date_parser.parse(text, default=default, dayfirst=dayfirst) for default in _DEFAULTS)
    except (ValueError, OverflowError, TypeError):
        return None
    if first.date() != second.date():
        return None
    return first.date()


class DateReader:
    """Parses the date column of one file, chunk after chunk, the same way throughout.

    Parameters
    ----------
    date_format : str or None
        A ``strftime`` format from the mapping. When given it is authoritative: values that do
        not match it are invalid (no guessing).
    dayfirst : bool or None
        Order of numeric dates such as ``01/02/2024``; None infers it from the data.
    """

    def __init__(self, date_format: str | None = None, dayfirst: bool | None = None) -> None:
        self.date_format = date_format
        self.dayfirst = dayfirst
        self.order_reason = "from the mapping" if dayfirst is not None else None

    def describe(self) -> str:
        """How dates were read, for the report."""
        if self.date_format:
            return f"format {self.date_format} (from the mapping)"
        if self.dayfirst is None:
            return "ISO 8601 or written out; no numeric d/m/y dates seen"
        order = "day-first" if self.dayfirst else "month-first"
        return f"ISO 8601 or written out; numeric dates {order} ({self.order_reason})"

    def _settle_order(self, numeric: list[re.Match]) -> None:
        if self.dayfirst is not None or not numeric:
            return
        day_evidence = sum(1 for match in numeric if int(match.group(1)) > 12)
        month_evidence = sum(1 for match in numeric if int(match.group(3)) > 12)
        if day_evidence or month_evidence:
            self.dayfirst = day_evidence >= month_evidence
            self.order_reason = "a first number above 12 was seen" if self.dayfirst else "a second number above 12 was seen"
            if day_evidence and month_evidence:
                self.order_reason = f"both orders seen; the majority wins ({max(day_evidence, month_evidence)} values)"
        else:
            self.dayfirst = False
            self.order_reason = "assumed: no number above 12 seen; set 'dayfirst' in the mapping if wrong"

    def parse(self, texts: Iterable[str]) -> dict[str, date | None]:
        """Map each distinct non-empty text to its date, or None when it is not a valid date."""
        texts = [text for text in dict.fromkeys(texts) if text]
        if self.date_format:
            return dict(zip(texts, _to_dates(texts, self.date_format), strict=True))
        result: dict[str, date | None] = {}
        iso = [text for text in texts if ISO_DATE.match(text)]
        result.update(zip(iso, _to_dates(iso, "ISO8601"), strict=True))
        compact = [text for text in texts if COMPACT_DATE.match(text)]
        result.update(zip(compact, _to_dates(compact, "%Y%m%d"), strict=True))
        numeric = {text: match for text in texts if (match := NUMERIC_DATE.match(text))}
        self._settle_order(list(numeric.values()))
        for text, match in numeric.items():
            day, month = (match.group(1), match.group(3)) if self.dayfirst else (match.group(3), match.group(1))
            year = match.group(4)
            try:
                result[text] = datetime.strptime(f"{day}/{month}/{year}", "%d/%m/%Y" if len(year) == 4 else "%d/%m/%y").date()
            except ValueError:
                result[text] = None
        for text in texts:
            if text not in result or (result[text] is None and text not in numeric):
                result[text] = _complete_dateutil(text, bool(self.dayfirst))
        return result
