"""DataValidation: split one uploaded sales file into clean rows and quarantined rows.

**Invariant:** every data record of the input ends up either clean or quarantined, with its
reasons: ``rows_clean + rows_quarantined == rows_in``, always, whatever the bytes.

What counts as a row: the file is decoded (BOM, UTF-8, UTF-16, else Latin-1, so any bytes
decode), split into records by the CSV parser with the sniffed delimiter, and blank lines are
dropped; the first remaining record is the header and every record after it is one input row.
A file that cannot be used as a whole (binary content, no header, required columns missing after
mapping) has every one of its rows quarantined with that reason; an empty file has no rows.

The file is streamed and validated in chunks of ``chunk_rows`` records, so memory stays bounded
whatever the file's size; duplicate keys are caught across chunks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

import numpy as np
import pandas as pd
from dateutil import parser as date_parser

from . import schema
from .schema import ColumnMapping

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
EXAMPLES_PER_RULE = 3

# Row rules, in the order reasons are listed; each name is what the report and quarantine say.
RULES = (
    "field_count",
    "encoding_error",
    "missing_date",
    "missing_item_id",
    "missing_quantity",
    "invalid_id",
    "invalid_date",
    "date_out_of_range",
    "future_date",
    "invalid_quantity",
    "negative_quantity",
    "absurd_quantity",
    "invalid_price",
    "non_positive_price",
    "absurd_price",
    "invalid_promotion",
    "duplicate_key",
)
FILE_RULES = ("empty_file", "binary_content", "no_header", "duplicate_columns", "missing_required_columns", "unparseable_record")

csv.field_size_limit(1 << 20)  # a 1 MB field is a broken file, not data; csv.Error is caught per record


Sink = Callable[[pd.DataFrame], None]


class _Hashing:
    """Passes reads through, hashing and counting the bytes as they were stored."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size) or b""
        self.sha256.update(chunk)
        self.bytes += len(chunk)
        return chunk


class _Gunzip:
    """Streaming gzip decompression that keeps what it could read from a truncated or corrupt
    file and records why it stopped (``error``), instead of losing the whole file."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._inflate = zlib.decompressobj(wbits=31)
        self._buffer = b""
        self._done = False
        self.error: str | None = None

    def read(self, size: int = -1) -> bytes:
        size = size if size >= 0 else 1 << 62
        while len(self._buffer) < size and not self._done:
            chunk = self._stream.read(1 << 16)
            if not chunk:
                self._done = True
                if not self._inflate.eof:
                    self.error = "gzip stream is truncated"
                break
            try:
                self._buffer += self._inflate.decompress(chunk)
                while self._inflate.eof and self._inflate.unused_data:  # concatenated gzip members
                    rest = self._inflate.unused_data
                    self._inflate = zlib.decompressobj(wbits=31)
                    self._buffer += self._inflate.decompress(rest)
            except zlib.error as exc:
                self._done = True
                self.error = f"gzip stream is corrupt ({exc})"
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class _Prefixed(io.RawIOBase):
    """Reads ``head`` (already consumed to sniff the file) and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        chunk = self._stream.read(len(buffer)) or b""
        buffer[: len(chunk)] = chunk
        return len(chunk)


def detect_encoding(head: bytes) -> tuple[str, str]:
    """(codec, how it was decided) for the file's first bytes."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "utf-8 BOM"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "utf-16 BOM"
    try:
        head[: max(0, len(head) - 4)].decode("utf-8") if len(head) >= HEAD_BYTES else head.decode("utf-8")
        return "utf-8", "valid utf-8"
    except UnicodeDecodeError:
        return "latin-1", "not utf-8: decoded as latin-1"


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines most consistently (``,`` when nothing does)."""
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        counts = [line.count(delimiter) for line in lines]
        if counts[0] == 0:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_binary(head: bytes, codec: str) -> bool:
    if codec == "utf-16":
        return False
    if b"\x00" in head:
        return True
    text = head.decode("latin-1")
    control = sum(1 for char in text if ord(char) < 32 and char not in "\r\n\t")
    return len(text) > 0 and control / len(text) > 0.05


def _records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """(physical line, fields) per non-blank record; fields is None for a record the parser rejects."""
    reader = csv.reader(text, delimiter=delimiter)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        if fields and any(field.strip() for field in fields):
            yield reader.line_num, fields


@dataclass
class _State:
    header: list[str]
    canonical: list[str]
    file_reason: str | None
    today: pd.Timestamp
    mapping: ColumnMapping
    seen_keys: set
    counts: Counter
    examples: dict
    dates: set
    series: set
    rows_in: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0


def _parse_dates(values: pd.Series, mapping: ColumnMapping) -> pd.Series:
    """pandas first (the mapping's format, else ISO 8601), python-dateutil for what pandas rejects."""
    fmt = mapping.date_format or "ISO8601"
    parsed = pd.to_datetime(values, format=fmt, errors="coerce", dayfirst=mapping.dayfirst)
    retry = parsed.isna() & values.ne("")
    if retry.any():
        fallback = {}
        for text in values[retry].unique():
            try:
                fallback[text] = pd.Timestamp(date_parser.parse(text, dayfirst=mapping.dayfirst))
            except (ValueError, OverflowError, TypeError, pd.errors.OutOfBoundsDatetime):
                fallback[text] = pd.NaT
        parsed = parsed.where(~retry, values[retry].map(fallback))
    parsed = pd.to_datetime(parsed, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()


def _check_chunk(frame: pd.DataFrame, state: _State) -> tuple[pd.DataFrame, pd.Series]:
    """Apply every row rule to a chunk of string fields; return typed clean columns and reasons."""
    index = frame.index
    failed: dict[str, pd.Series] = {}
    blank = {column: frame[column].eq("") if column in frame else pd.Series(True, index=index) for column in schema.CANONICAL_COLUMNS}
    failed["encoding_error"] = frame.apply(lambda column: column.str.contains("\ufffd", regex=False)).any(axis=1)
    for column in schema.REQUIRED_COLUMNS:
        failed[f"missing_{column}"] = blank[column]
    ids = [frame[c] for c in (schema.ITEM, schema.STORE) if c in frame]
    failed["invalid_id"] = pd.Series(np.logical_or.reduce([s.str.len().gt(schema.MAX_ID_LENGTH).to_numpy() for s in ids]), index=index)

    dates = _parse_dates(frame[schema.DATE], state.mapping)
    failed["invalid_date"] = dates.isna() & ~blank[schema.DATE]
    failed["date_out_of_range"] = dates.lt(pd.Timestamp(schema.EARLIEST_DATE))
    failed["future_date"] = dates.gt(state.today)

    quantity = pd.to_numeric(frame[schema.QUANTITY], errors="coerce")
    failed["invalid_quantity"] = (quantity.isna() | ~np.isfinite(quantity.fillna(0))) & ~blank[schema.QUANTITY]
    failed["negative_quantity"] = quantity.lt(0)
    failed["absurd_quantity"] = quantity.gt(schema.MAX_QUANTITY) & np.isfinite(quantity)

    if schema.PRICE in frame:
        price = pd.to_numeric(frame[schema.PRICE], errors="coerce")
        failed["invalid_price"] = (price.isna() | ~np.isfinite(price.fillna(0))) & ~blank[schema.PRICE]
        failed["non_positive_price"] = price.le(0)
        failed["absurd_price"] = price.gt(schema.MAX_UNIT_PRICE) & np.isfinite(price)
    else:
        price = pd.Series(np.nan, index=index)
    if schema.PROMOTION in frame:
        flags = frame[schema.PROMOTION].str.lower()
        failed["invalid_promotion"] = ~flags.isin(schema.TRUE_VALUES | schema.FALSE_VALUES)
        promotion = flags.isin(schema.TRUE_VALUES).astype("int8")
    else:
        promotion = pd.Series(0, index=index, dtype="int8")

    store = frame[schema.STORE].where(frame[schema.STORE].ne(""), schema.NO_STORE) if schema.STORE in frame else pd.Series(schema.NO_STORE, index=index)
    bad = np.logical_or.reduce([np.asarray(mask, dtype=bool) for mask in failed.values()])
    keys = pd.Series(list(zip(frame[schema.ITEM], store, dates.dt.strftime("%Y-%m-%d"))), index=index)
    duplicate = pd.Series(False, index=index)
    candidates = keys[~bad]
    if len(candidates):
        duplicate.loc[candidates.index] = candidates.duplicated(keep="first") | candidates.isin(state.seen_keys)
        state.seen_keys.update(candidates[~duplicate.loc[candidates.index]])
    failed["duplicate_key"] = duplicate

    reasons = pd.Series("", index=index)
    for rule in RULES:
        if rule in failed:
            mask = pd.Series(np.asarray(failed[rule], dtype=bool), index=index)
            reasons = reasons.where(~mask, reasons + np.where(reasons.eq(""), "", ";") + rule)
    clean = pd.DataFrame(
        {
            schema.DATE: dates.dt.strftime("%Y-%m-%d"),
            schema.ITEM: frame[schema.ITEM],
            schema.STORE: store,
            schema.QUANTITY: quantity,
            schema.PRICE: price,
            schema.PROMOTION: promotion,
        }
    )
    extras = [column for column in frame.columns if column not in schema.CANONICAL_COLUMNS and column != "_line"]
    for column in extras:
        clean[column] = frame[column]
    return clean, reasons


def _record_examples(state: _State, lines: pd.Series, reasons: pd.Series) -> None:
    for line, text in zip(lines, reasons):
        for rule in text.split(";"):
            state.counts[rule] += 1
            if len(state.examples[rule]) < EXAMPLES_PER_RULE:
                state.examples[rule].append(int(line))


def _flush(state: _State, rows: list[tuple[int, list[str]]], ragged: list[tuple[int, list[str] | None]], clean_sink: Sink, quarantine_sink: Sink, delimiter: str) -> None:
    """Validate one chunk and hand its clean and quarantined rows to the sinks."""
    quarantined: list[pd.DataFrame] = []
    if ragged or (rows and state.file_reason):
        reason = state.file_reason or "field_count"
        items = ragged + ([(line, fields) for line, fields in rows] if state.file_reason else [])
        bad = pd.DataFrame(
            {
                "_line": [line for line, _ in items],
                "_reasons": [state.file_reason or ("unparseable_record" if fields is None else reason) for line, fields in items],
                "_raw": [delimiter.join(fields) if fields is not None else "" for _, fields in items],
            }
        )
        quarantined.append(bad)
        _record_examples(state, bad["_line"], bad["_reasons"])
    if rows and not state.file_reason:
        frame = pd.DataFrame([fields for _, fields in rows], columns=state.canonical, dtype="str").fillna("")
        frame = frame.apply(lambda column: column.str.strip())
        lines = pd.Series([line for line, _ in rows])
        clean, reasons = _check_chunk(frame, state)
        good = reasons.eq("")
        if good.any():
            kept = clean[good]
            clean_sink(kept.reset_index(drop=True))
            state.rows_clean += int(good.sum())
            state.dates.update(kept[schema.DATE].unique())
            state.series.update(zip(kept[schema.ITEM], kept[schema.STORE]))
        if (~good).any():
            rejected = frame[~good].copy()
            rejected.insert(0, "_reasons", reasons[~good])
            rejected.insert(0, "_line", lines[~good].to_numpy())
            quarantined.append(rejected)
            _record_examples(state, lines[~good], reasons[~good])
    for frame in quarantined:
        state.rows_quarantined += len(frame)
        quarantine_sink(frame.reset_index(drop=True))


def _consume(records, state: _State, mapping: ColumnMapping, rows: list, ragged: list, chunk_rows: int, clean_sink: Sink, quarantine_sink: Sink, delimiter: str) -> None:
    """Take records into rows (or ragged records), flushing a chunk whenever it is full."""
    for line, fields in records:
        if not state.header and state.file_reason is None:
            if fields is None:
                state.file_reason = "no_header"
                state.header = ["?"]
                state.rows_in += 1
                ragged.append((line, None))
                continue
            state.header = fields
            state.canonical, missing = mapping.rename_header(fields)
            if len(set(state.canonical)) != len(state.canonical):
                state.file_reason = "duplicate_columns"
            elif missing:
                state.file_reason = "missing_required_columns"
                state.examples["missing_required_columns_detail"] = missing
            continue
        if not state.header:
            state.header = ["?"]  # binary file: nothing is a header
        state.rows_in += 1
        if fields is None or (state.file_reason is None and len(fields) != len(state.header)):
            ragged.append((line, fields))
        else:
            rows.append((line, fields))
        if len(rows) + len(ragged) >= chunk_rows:
            _flush(state, rows, ragged, clean_sink, quarantine_sink, delimiter)
            rows.clear()
            ragged.clear()


def infer_frequency(dates: set[str], configured: str | None) -> str:
    """``D`` or ``W``: configured, else from the spacing of the distinct dates seen."""
    if configured:
        return configured
    if len(dates) < 2:
        return "D"
    ordered = pd.to_datetime(sorted(dates))
    gaps = np.diff(ordered.values).astype("timedelta64[D]").astype(int)
    weekdays = set(ordered.day_of_week)
    return "W" if len(weekdays) == 1 and np.median(gaps) >= 7 else "D"


def validate(
    stream: BinaryIO,
    mapping: ColumnMapping,
    *,
    clean_sink: Sink,
    quarantine_sink: Sink,
    today: date | None = None,
    chunk_rows: int = 100_000,
) -> dict:
    """Validate one sales file, streaming; return the report (see module docstring for the invariant)."""
    raw = _Hashing(stream)
    first = raw.read(HEAD_BYTES)
    compressed = first[:2] == b"\x1f\x8b"
    source = _Gunzip(_Prefixed(first, raw)) if compressed else _Prefixed(first, raw)
    head = source.read(HEAD_BYTES) or b""
    codec, codec_reason = detect_encoding(head)
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(head, source), buffer_size=HEAD_BYTES), encoding=codec, errors="replace", newline="")
    sample = head.decode(codec if codec != "utf-16" else "utf-16", errors="replace")
    delimiter = sniff_delimiter(sample)
    state = _State(
        header=[], canonical=[], file_reason=None, today=pd.Timestamp(today or date.today()), mapping=mapping,
        seen_keys=set(), counts=Counter(), examples=defaultdict(list), dates=set(), series=set(),
    )  # fmt: skip
    if _looks_binary(head, codec):
        state.file_reason = "binary_content"
    rows: list[tuple[int, list[str]]] = []
    ragged: list[tuple[int, list[str] | None]] = []
    _consume(_records(text, delimiter), state, mapping, rows, ragged, chunk_rows, clean_sink, quarantine_sink, delimiter)
    stream_error = source.error if compressed else None
    _flush(state, rows, ragged, clean_sink, quarantine_sink, delimiter)
    text.detach()
    if state.rows_in == 0 and state.file_reason is None:
        state.file_reason = "empty_file" if not state.header else None
    frequency = infer_frequency(state.dates, mapping.frequency)
    detail = state.examples.pop("missing_required_columns_detail", None)
    report = {
        "stream_error": stream_error,
        "rows_in": state.rows_in,
        "rows_clean": state.rows_clean,
        "rows_quarantined": state.rows_quarantined,
        "file_reason": state.file_reason,
        "missing_columns": detail,
        "rules": {rule: state.counts[rule] for rule in (*RULES, *FILE_RULES) if state.counts[rule]},
        "examples": {rule: lines for rule, lines in state.examples.items()},
        "input": {
            "sha256": raw.sha256.hexdigest(),
            "bytes": raw.bytes,
            "compression": "gzip" if compressed else None,
            "encoding": codec,
            "encoding_reason": codec_reason,
            "delimiter": delimiter,
            "header": state.header if state.header != ["?"] else [],
            "columns": state.canonical,
        },
        "frequency": frequency,
        "series": len(state.series),
        "date_range": [min(state.dates), max(state.dates)] if state.dates else None,
    }
    assert report["rows_clean"] + report["rows_quarantined"] == report["rows_in"], report  # the invariant
    return report


def describe_reasons(report: dict) -> str:
    """One line for people: ``120 in, 113 clean, 7 quarantined (negative_quantity 2, ...)``."""
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(report["rules"].items(), key=lambda item: -item[1]))
    line = f"{report['rows_in']} in, {report['rows_clean']} clean, {report['rows_quarantined']} quarantined"
    if report.get("file_reason"):
        line += f"; whole file: {report['file_reason']}"
    return line + (f" ({rules})" if rules else "")

