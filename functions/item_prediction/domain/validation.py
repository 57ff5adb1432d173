"""DataValidation: split one uploaded sales file into clean rows and quarantined rows, and report.

**Invariant:** every row of the input ends up either clean or quarantined, the quarantined ones
with all their reasons: ``rows_clean + rows_quarantined == rows_in``, always, whatever the bytes.

What a row is, precisely: the stored bytes are gunzipped if they are gzip, decoded (the
encoding is detected; every byte sequence decodes, see :func:`decoding.detect_encoding`) and
split into *records* by Python's ``csv`` reader with the sniffed delimiter; records with no
non-blank field (blank lines) are skipped. In a text file the first record is the header and
every later record is one row, whatever its field count (a record with too few or too many
fields is a row quarantined for ``field_count``; one the reader rejects, for
``unparseable_record``). A file that is not text (binary, a workbook, an image) has no header:
every record is a row. When the file cannot be used as a whole (not text, no parsable header,
required columns missing after mapping, duplicate columns, a broken mapping file), every one of
its rows is quarantined with that file-level reason; an empty file has no rows.

Memory is bounded whatever the file's size: the stream is read in chunks of ``chunk_rows``
records, clean and quarantined rows go to sinks as each chunk is done, and duplicate keys are
caught across chunks with 8 bytes per key (64-bit hashes: the chance that two different keys of a
one-million-row file collide, quarantining one of them as a duplicate, is below 1e-7).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import BinaryIO

import numpy as np
import pandas as pd

from . import decoding, schema
from .dates import DateReader
from .schema import ColumnMapping

EXAMPLES_PER_RULE = 3
DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_CHUNK_BYTES = 64 << 20  # records held at a time, estimated as Python holds them: bounds memory whatever a record's size

# Row rules, in the order a row's reasons are listed; each name is what the report and the
# quarantine file say.
RULES = (
    "field_count",
    "unparseable_record",
    "encoding_error",
    "missing_date",
    "missing_item_id",
    "missing_quantity",
    "missing_store_id",
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
# File rules: the reason every row of the file is quarantined.
FILE_RULES = (
    "empty_file",
    "binary_content",
    "unsupported_format",
    "no_header",
    "duplicate_columns",
    "missing_required_columns",
    "invalid_mapping",
    *decoding.REFUSALS,
)
REFUSED = decoding.REFUSALS  # file rules that stop reading: the report has no rows, what the sinks got is void
QUARANTINE_META = ("_line", "_reasons")
RAW = "_raw"  # a record that could not be split into the header's columns, re-serialized

Sink = Callable[[pd.DataFrame], None]
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Distinct:
    """One text column of a chunk as its distinct values and each row's code into them: exports
    repeat dates, ids, prices and flags, so every rule judges a distinct value once and maps the
    verdict back onto the rows (one factorization per column, shared by all the rules)."""

    def __init__(self, codes: np.ndarray, uniques: np.ndarray) -> None:
        self.codes, self.uniques = codes, uniques

    @classmethod
    def of(cls, values: np.ndarray) -> _Distinct:
        codes, uniques = pd.factorize(values)
        return cls(codes, np.asarray(uniques, dtype=object))

    def mapped(self, function: Callable[[str], str]) -> _Distinct:
        """The column with ``function`` applied to its text (values that become equal merge)."""
        codes, uniques = pd.factorize(np.array([function(text) for text in self.uniques], dtype=object))
        return _Distinct(codes[self.codes], np.asarray(uniques, dtype=object))

    def per_value(self, function: Callable[[str], object], dtype=object) -> np.ndarray:
        """``function`` of each row's text, computed once per distinct value."""
        return np.array([function(text) for text in self.uniques], dtype=dtype)[self.codes]

    def values(self) -> np.ndarray:
        return self.uniques[self.codes]


def _duplicated_columns(header: list[str], columns: list[str]) -> str:
    """Which file columns share a (canonical) name, for people: ``quantity = 'Units' (column 3),
    'units' (column 4)``; empty when every name is unique."""
    positions: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(columns):
        positions[name].append(index)
    groups = [(name, where) for name, where in positions.items() if len(where) > 1]
    return "; ".join(
        f"{name} = " + ", ".join(f"{header[index]!r} (column {index + 1})" for index in where) for name, where in groups
    )


class KeySet:
    """A set of 64-bit hashes in sorted runs that merge as they grow (log-structured).

    8 bytes a key and O(log n) membership; adding n keys in chunks costs O(n log n) in all. The
    one structure of a validation that grows with the file: 8 bytes per distinct clean row key
    (80 MB at 10 M rows), and about twice that for a moment while the two largest runs merge.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            position = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            found |= run[position] == hashes
        return found

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self._runs)

    def add(self, hashes: np.ndarray) -> None:
        run = np.unique(hashes)
        self._push(run[~self.contains(run)])

    def take_new(self, hashes: np.ndarray) -> np.ndarray:
        """A mask of the rows whose hash is new: not in the set, and the first of its value among
        ``hashes``; those hashes are added. One sort of the chunk does both."""
        distinct, first = np.unique(hashes, return_index=True)  # first: each value's first row
        new = ~self.contains(distinct)
        mask = np.zeros(len(hashes), dtype=bool)
        mask[first[new]] = True
        self._push(distinct[new])
        return mask

    def _push(self, run: np.ndarray) -> None:
        """Add a sorted run of distinct hashes none of which is in the set."""
        while self._runs and len(self._runs[-1]) <= len(run):
            run = _merge_disjoint(self._runs.pop(), run)
        if len(run):
            self._runs.append(run)


def _merge_disjoint(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two sorted arrays without common values as one sorted array, placed rather than re-sorted:
    the peak is the inputs and the result (``np.union1d`` concatenates and sorts a copy, twice that)."""
    where = np.searchsorted(left, right) + np.arange(len(right))
    merged = np.empty(len(left) + len(right), dtype=left.dtype)
    taken = np.zeros(len(merged), dtype=bool)
    taken[where] = True
    merged[where] = right
    merged[~taken] = left
    return merged


def key_hashes(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """One 64-bit hash per row key from the key's parts, each as (codes per row, distinct text):
    each distinct text is hashed once (``pd.util.hash_array``) and the rows take theirs by code,
    then the parts are mixed as pandas' ``hash_pandas_object`` mixes a frame's columns (CPython's
    tuple hash): the same hashes as hashing every row's text, at a fraction of the cost."""
    mixed = np.full(len(parts[0][0]), 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1000003)
    for index, (codes, texts) in enumerate(parts):
        mixed ^= pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)[codes]
        mixed *= multiplier
        multiplier += np.uint64(82520 + 2 * (len(parts) - index))
    return mixed + np.uint64(97531)


def infer_frequency(dates: Iterable[str], configured: str | None) -> str:
    """``D``, ``W`` or ``M``: configured, else from the distinct dates: monthly when they all fall
    on one day of the month (or all on month ends) and are typically a month apart, weekly when
    they all fall on one weekday and are typically a week apart, daily otherwise."""
    if configured:
        return configured
    distinct = sorted(set(dates))
    if len(distinct) < 2:
        return "D"
    ordered = pd.to_datetime(distinct)
    gap = np.median(np.diff(ordered.to_numpy()).astype("timedelta64[D]").astype(int))
    if (ordered.day.nunique() == 1 or ordered.is_month_end.all()) and 28 <= gap <= 31:
        return "M"
    return "W" if ordered.day_of_week.nunique() == 1 and gap >= 7 else "D"


class _Validator:
    """The state of one file's validation, fed record by record (see :func:`validate`)."""

    def __init__(
        self,
        mapping: ColumnMapping,
        today: date,
        chunk_rows: int,
        clean_sink: Sink,
        quarantine_sink: Sink,
        delimiter: str,
        max_columns: int = decoding.Budget.max_columns,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        self.mapping = mapping
        self.max_columns = max_columns
        self.chunk_bytes = max(1, chunk_bytes)
        self.pending_bytes = 0
        self.latest_date = today + timedelta(days=schema.FUTURE_TOLERANCE_DAYS)
        self.earliest_date = date.fromisoformat(schema.EARLIEST_DATE)
        self.chunk_rows = max(1, chunk_rows)
        self.clean_sink, self.quarantine_sink = clean_sink, quarantine_sink
        self.delimiter = delimiter
        self.decimal_comma = mapping.decimal == "," or (mapping.decimal is None and delimiter != ",")
        self.dates = DateReader(mapping.date_format, mapping.dayfirst)
        self.header: list[str] | None = None  # the file's column names, stripped
        self.columns: list[str] = []  # the same, renamed to canonical names
        self.has_header = True
        self.file_reason: str | None = None
        self.file_detail: str | None = None
        self.missing_columns: list[str] | None = None
        self.pending: list[tuple[int, list[str] | None]] = []
        self.rows_in = self.rows_clean = self.rows_quarantined = 0
        self.counts: Counter = Counter()
        self.examples: dict[str, list[int]] = defaultdict(list)
        self.missing_optional: Counter = Counter()
        self.decimal_commas = 0
        self.keys = KeySet()
        self.days: set[str] = set()
        self.series: set[tuple[str, str]] = set()

    # -- file level -------------------------------------------------------------------------
    def fail_file(self, reason: str, detail: str | None = None) -> None:
        """Quarantine every row of the file with ``reason``."""
        if self.file_reason is None:
            self.file_reason, self.file_detail = reason, detail

    def take_header(self, fields: list[str] | None) -> None:
        if fields is None:
            self.fail_file("no_header", "the first record could not be parsed as CSV")
            self.has_header = False  # the broken first record is a row like the others
            return
        self.header = [name.strip() or f"unnamed_{index + 1}" for index, name in enumerate(fields)]
        self.columns, missing = self.mapping.rename_header(fields)
        duplicated = _duplicated_columns(self.header, self.columns)
        if duplicated:
            self.fail_file("duplicate_columns", f"columns named more than once (keep one of each): {duplicated}")
        elif missing:
            self.missing_columns = missing
            mapped = {column: self.mapping.columns[column] for column in missing if column in self.mapping.columns}
            self.fail_file(
                "missing_required_columns",
                f"required columns not found: {missing}"
                + (f" (the mapping looks for {mapped})" if mapped else "")
                + f"; the header is {self.header}",
            )

    def feed(self, batches: Iterable[tuple[list[tuple[int, list[str] | None]], int]]) -> None:
        """Take the records of ``batches`` (:func:`decoding.record_batches`): the header first,
        then rows, validated a chunk at a time (``chunk_rows`` records or about ``chunk_bytes``)."""
        for batch, held in batches:
            if self.header is None and self.has_header:
                first, count = batch[0][1], len(batch)
                batch = self._after_header(batch)
                if len(batch) < count and first:  # the rows' bytes without the header's own
                    held -= decoding.record_bytes(first)
            per_record = held / max(1, len(batch))
            while batch:
                by_bytes = math.ceil((self.chunk_bytes - self.pending_bytes) / per_record)  # the record reaching it included
                room = max(1, min(self.chunk_rows - len(self.pending), by_bytes))
                part, batch = batch[:room], batch[room:]
                self.rows_in += len(part)
                self.pending += part
                self.pending_bytes += per_record * len(part)
                if len(self.pending) >= self.chunk_rows or self.pending_bytes >= self.chunk_bytes:
                    self.flush()
        self.flush()

    def _after_header(self, batch: list[tuple[int, list[str] | None]]) -> list[tuple[int, list[str] | None]]:
        """The batch without its first record when that record is the header (taken here)."""
        if self.file_reason in ("binary_content", "unsupported_format"):
            self.has_header = False  # not text: nothing in it is a header
            return batch
        fields = batch[0][1]
        if fields is not None and len(fields) > self.max_columns:
            raise decoding.FileRefused(
                "too_many_columns", f"the header has {len(fields)} columns, more than {self.max_columns} (MAX_COLUMNS)"
            )
        self.take_header(fields)
        return batch[1:] if self.has_header else batch

    # -- chunks -------------------------------------------------------------------------------
    def flush(self) -> None:
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        if not pending:
            return
        if self.file_reason:
            self._quarantine_raw(pending, [self.file_reason] * len(pending))
            return
        width = len(self.columns)
        lines, records = zip(*pending, strict=True)
        if None not in records and set(map(len, records)) == {width}:  # every record well formed: no second pass
            self._check(list(lines), list(records))
            return
        rows = [(line, fields) for line, fields in pending if fields is not None and len(fields) == width]
        ragged = [(line, fields) for line, fields in pending if fields is None or len(fields) != width]
        if ragged:
            self._quarantine_raw(ragged, ["unparseable_record" if fields is None else "field_count" for _, fields in ragged])
        if rows:
            self._check([line for line, _ in rows], [fields for _, fields in rows])

    def _serialize(self, fields: list[str] | None) -> str:
        if fields is None:
            return ""
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter, lineterminator="").writerow(fields)
        return buffer.getvalue()

    def _count(self, lines: np.ndarray, matrix: np.ndarray, names: np.ndarray) -> None:
        """Tally rules (columns of ``matrix``) and keep the first example lines of each."""
        for column, rule in enumerate(names):
            hits = np.flatnonzero(matrix[:, column])
            if len(hits):
                self.counts[rule] += len(hits)
                room = EXAMPLES_PER_RULE - len(self.examples[rule])
                if room > 0:
                    self.examples[rule] += [int(line) for line in lines[hits[:room]]]

    def _quarantine_raw(self, records: list[tuple[int, list[str] | None]], reasons: list[str]) -> None:
        lines = np.array([line for line, _ in records], dtype=np.int64)
        names = np.array(sorted(set(reasons)), dtype=object)
        self._count(lines, np.array(reasons, dtype=object)[:, None] == names[None, :], names)
        frame = pd.DataFrame({"_line": lines, "_reasons": reasons})
        if self.header is not None and not self.file_reason:
            for name in self.header:
                frame[name] = ""
        frame[RAW] = [self._serialize(fields) for _, fields in records]
        self._emit_quarantine(frame)

    def _emit_quarantine(self, frame: pd.DataFrame) -> None:
        self.rows_quarantined += len(frame)
        self.quarantine_sink(frame.reset_index(drop=True))

    def _numbers(self, column: _Distinct, blank: np.ndarray | None = None) -> pd.Series:
        """Numbers from text (NaN where it is not one, or where ``blank``, per distinct value); a
        decimal comma is read where allowed."""
        texts = list(column.uniques)
        if self.decimal_comma:
            commas = np.array([bool(_DECIMAL_COMMA.match(text)) for text in texts], dtype=bool)
            counts = np.bincount(column.codes, minlength=len(texts))
            self.decimal_commas += int(counts[commas].sum()) if texts else 0
            texts = [text.replace(",", ".") if comma else text for text, comma in zip(texts, commas, strict=True)]
        numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").astype("float64").to_numpy(copy=True)
        if blank is not None:
            numbers[blank] = np.nan
        return pd.Series(numbers[column.codes])

    def _check(self, lines_list: list[int], records: list[list[str]]) -> None:
        """Apply every row rule to a chunk of well-formed records; emit clean and quarantined rows.

        Exports repeat values a lot (dates, ids, prices, flags), so text is judged once per
        distinct value of a column and rows are mapped onto the verdicts.
        """
        lines = np.array(lines_list, dtype=np.int64)
        table = np.array(records, dtype=object)  # rows x columns (every record has the header's width)
        raw = [table[:, index] for index in range(table.shape[1])]
        distinct = {}
        for index, name in enumerate(self.columns):
            column = _Distinct.of(raw[index])
            distinct[name] = column.mapped(str.strip) if name in schema.CANONICAL_COLUMNS else column
        frame = pd.DataFrame({name: column.values() for name, column in distinct.items()}, dtype=object)
        failed: dict[str, np.ndarray] = {}
        dates = self._dates(distinct, failed)
        values = {"date": pd.Series(dates.values(), dtype=object), "quantity": self._quantity(distinct, failed)}
        values.update(self._price(distinct, failed), **self._promotion(distinct, failed))
        self._identity_rules(distinct, failed)
        store = frame[schema.STORE] if schema.STORE in frame else pd.Series(schema.NO_STORE, index=frame.index, dtype=object)
        no_store = _Distinct(np.zeros(len(lines), dtype=np.intp), np.array([schema.NO_STORE], dtype=object))
        keys = (distinct[schema.ITEM], distinct.get(schema.STORE) or no_store, dates)
        failed["duplicate_key"] = self._duplicates(keys, failed)
        names = np.array([rule for rule in RULES if rule in failed], dtype=object)
        matrix = np.column_stack([np.asarray(failed[rule], dtype=bool) for rule in names])
        self._count(lines, matrix, names)
        rejected = matrix.any(axis=1)
        if not rejected.all():
            self._emit_clean(frame, store, values, ~rejected, keys)
        if rejected.any():
            reasons = [";".join(names[row]) for row in matrix[rejected]]
            quarantined = pd.DataFrame({"_line": lines[rejected], "_reasons": reasons})
            for position, name in enumerate(self.header or []):
                quarantined[name] = raw[position][rejected]
            quarantined[RAW] = ""
            self._emit_quarantine(quarantined)

    # -- the rules, column by column: each fills ``failed`` and returns the typed values ------------
    @staticmethod
    def _blank(distinct: dict[str, _Distinct], column: str) -> np.ndarray:
        if column not in distinct:
            return np.ones(len(next(iter(distinct.values())).codes), dtype=bool)
        return distinct[column].per_value(lambda text: text.lower() in schema.MISSING_TOKENS, bool)

    def _identity_rules(self, distinct: dict[str, _Distinct], failed: dict) -> None:
        failed["encoding_error"] = np.logical_or.reduce(
            [distinct[c].per_value(lambda text: "\ufffd" in text, bool) for c in self.columns]
        )
        for column in schema.REQUIRED_COLUMNS:
            failed[f"missing_{column}"] = self._blank(distinct, column)
        if schema.STORE in distinct:
            failed["missing_store_id"] = self._blank(distinct, schema.STORE)
        bad_id = lambda text: len(text) > schema.MAX_ID_LENGTH or _CONTROL.search(text) is not None  # noqa: E731
        failed["invalid_id"] = np.logical_or.reduce(
            [distinct[c].per_value(bad_id, bool) for c in (schema.ITEM, schema.STORE) if c in distinct]
        )

    def _dates(self, distinct: dict[str, _Distinct], failed: dict) -> _Distinct:
        """The dates as ISO text ("" where not a valid date), per distinct value of the column."""
        column = distinct[schema.DATE]
        parsed = self.dates.parse(column.uniques)
        iso = np.array(
            [(day.isoformat() if (day := parsed.get(text)) is not None else "") for text in column.uniques], dtype=object
        )
        earliest, latest = self.earliest_date.isoformat(), self.latest_date.isoformat()
        valid = iso != ""
        failed["invalid_date"] = ~valid[column.codes] & ~self._blank(distinct, schema.DATE)
        failed["date_out_of_range"] = (valid & (iso < earliest))[column.codes]
        failed["future_date"] = (valid & (iso > latest))[column.codes]
        return _Distinct(column.codes, iso)

    def _quantity(self, distinct: dict[str, _Distinct], failed: dict) -> pd.Series:
        quantity = self._numbers(distinct[schema.QUANTITY])
        finite = np.isfinite(quantity.to_numpy())
        failed["invalid_quantity"] = ~finite & ~self._blank(distinct, schema.QUANTITY)
        failed["negative_quantity"] = finite & quantity.lt(0).to_numpy()
        failed["absurd_quantity"] = finite & quantity.gt(schema.MAX_QUANTITY).to_numpy()
        return quantity

    def _price(self, distinct: dict[str, _Distinct], failed: dict) -> dict:
        """The price and where it was blank (an optional column: absent means blank everywhere)."""
        rows = len(distinct[schema.DATE].codes)
        if schema.PRICE not in distinct:
            return {"price": pd.Series(np.nan, index=range(rows)), "price_blank": None}
        column = distinct[schema.PRICE]
        blank = np.array([text.lower() in schema.MISSING_TOKENS for text in column.uniques], dtype=bool)
        price, price_blank = self._numbers(column, blank), blank[column.codes]
        finite = np.isfinite(price.to_numpy())
        failed["invalid_price"] = ~finite & ~price_blank
        failed["non_positive_price"] = finite & price.le(0).to_numpy()
        failed["absurd_price"] = finite & price.gt(schema.MAX_UNIT_PRICE).to_numpy()
        return {"price": price.where(np.isfinite(price)), "price_blank": price_blank}

    def _promotion(self, distinct: dict[str, _Distinct], failed: dict) -> dict:
        """The promotion flag as 0/1 and where it was blank (absent: no promotion, not counted)."""
        if schema.PROMOTION not in distinct:
            return {
                "promotion": pd.Series(0, index=range(len(distinct[schema.DATE].codes)), dtype="int8"),
                "promotion_blank": None,
            }
        flags = distinct[schema.PROMOTION].mapped(str.lower)
        promotion_blank = flags.per_value(lambda text: text in schema.MISSING_TOKENS, bool)
        known = flags.per_value(lambda text: text in schema.TRUE_VALUES | schema.FALSE_VALUES, bool)
        failed["invalid_promotion"] = ~known & ~promotion_blank
        promotion = flags.per_value(lambda text: text in schema.TRUE_VALUES, bool).astype("int8")
        return {"promotion": pd.Series(promotion), "promotion_blank": promotion_blank}

    def _duplicates(self, keys: tuple[_Distinct, ...], failed: dict) -> np.ndarray:
        """Rows whose key (item, store, ISO date) was seen before, among rows that pass every other
        rule: the first occurrence in the file wins (across chunks too)."""
        duplicate = np.zeros(len(keys[0].codes), dtype=bool)
        candidates = np.flatnonzero(~np.logical_or.reduce(list(failed.values())))
        if len(candidates):
            hashes = key_hashes([(part.codes[candidates], part.uniques) for part in keys])
            duplicate[candidates[~self.keys.take_new(hashes)]] = True
        return duplicate

    def _emit_clean(self, frame: pd.DataFrame, store: pd.Series, values: dict, good: np.ndarray, keys: tuple) -> None:
        clean = pd.DataFrame(
            {
                schema.DATE: values["date"][good].to_numpy(dtype=object),
                schema.ITEM: frame[schema.ITEM][good].to_numpy(dtype=object),
                schema.STORE: store[good].to_numpy(dtype=object),
                schema.QUANTITY: values["quantity"][good].to_numpy(),
                schema.PRICE: values["price"][good].to_numpy(),
                schema.PROMOTION: values["promotion"][good].to_numpy(),
            }
        )
        for column in self.columns:
            if column not in schema.CANONICAL_COLUMNS:
                clean[column] = frame[column][good].to_numpy(dtype=object)
        self.rows_clean += len(clean)
        items, stores, dates = keys  # the distinct values the clean rows use, from their codes
        self.days.update(dates.uniques[np.unique(dates.codes[good])])
        width = len(stores.uniques)
        pairs = np.unique(items.codes[good].astype(np.int64) * width + stores.codes[good])
        self.series.update(zip(items.uniques[pairs // width], stores.uniques[pairs % width], strict=True))
        for column, blank in ((schema.PRICE, values["price_blank"]), (schema.PROMOTION, values["promotion_blank"])):
            if blank is not None:
                self.missing_optional[column] += int(blank[good].sum())
        self.clean_sink(clean)


def validate(
    stream: BinaryIO,
    mapping: ColumnMapping,
    *,
    clean_sink: Sink,
    quarantine_sink: Sink,
    today: date | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    mapping_error: str | None = None,
    budget: decoding.Budget | None = None,
    sizes: Iterable[int | None] = (),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict:
    """Validate one sales file, streaming; return the report.

    Parameters
    ----------
    stream : binary file-like
        The object's bytes as stored (gzip is recognised by its magic number).
    mapping : ColumnMapping
        How the file's columns map onto the contract (:mod:`item_prediction.domain.schema`).
    clean_sink, quarantine_sink : callable
        Called with each chunk's clean rows (canonical, typed columns plus extra columns) and
        quarantined rows (``_line``, ``_reasons``, the file's own columns, ``_raw``).
    today : date, optional
        The reference for ``future_date`` (default: today, UTC on Lambda).
    chunk_rows, chunk_bytes : int
        Records validated at a time, at most that many and about that many bytes as Python holds
        them; memory is bounded by them, not by the file's size.
    mapping_error : str, optional
        Why the dataset's mapping file could not be used: every row is quarantined with
        ``invalid_mapping`` (the data cannot be read as the user meant without it).
    budget : decoding.Budget, optional
        Bytes of the object, of the gunzipped stream and of one record, and header columns,
        past which the file is refused as a whole (:data:`REFUSED`); defaults as in Budget.
    sizes : iterable of int or None
        The object's size as the event and the store declare it, checked before reading.

    Returns
    -------
    dict
        Row counts (``rows_in == rows_clean + rows_quarantined``), ``file_reason``, counts per
        rule, example line numbers per rule, the input's fingerprint (sha256 of the stored
        bytes), compression, encoding, delimiter, header, how dates were read, the frequency,
        series and date range of the clean rows. A file refused while it is read (``file_reason``
        in :data:`REFUSED`) has no rows in the report and the caller discards what the sinks got.
    """
    budget = budget or decoding.Budget()
    raw = decoding.HashingReader(stream, limit=budget.max_object_bytes)
    sniffed: dict = {}
    try:
        decoding.check_declared_sizes(sizes, budget.max_object_bytes)  # before a byte is read
        text = _open_text(raw, budget, sniffed)
        validator = _Validator(
            mapping,
            today or date.today(),
            chunk_rows,
            clean_sink,
            quarantine_sink,
            sniffed["delimiter"],
            budget.max_columns,
            chunk_bytes,
        )
        _refuse_unreadable(validator, sniffed.pop("head"), sniffed["encoding"], mapping_error)
        validator.feed(decoding.record_batches(text, sniffed["delimiter"], budget.max_record_bytes))
        raw.drain()  # the fingerprint covers the whole object
    except decoding.FileRefused as refusal:
        return _refused_report(refusal, raw, sniffed, mapping)
    if not validator.rows_in and validator.header is None and not validator.file_reason:
        validator.fail_file("empty_file", "the file has no records")
    report = {**_report(validator, mapping), "input": _input(validator, raw, sniffed)}
    if report["rows_clean"] + report["rows_quarantined"] != report["rows_in"]:  # the invariant: a bug if broken
        raise AssertionError(
            f"row accounting broken: {report['rows_in']} in, "
            f"{report['rows_clean']} clean, {report['rows_quarantined']} quarantined"
        )
    return report


def _refuse_unreadable(validator: _Validator, head: bytes, encoding: str, mapping_error: str | None) -> None:
    """File-level reasons known from the first bytes (or the mapping) before any record is read."""
    foreign = decoding.foreign_format(head)
    if foreign:
        validator.fail_file("unsupported_format", f"this is {foreign}")
    elif decoding.looks_binary(head, encoding):
        validator.fail_file("binary_content", "the file holds binary data, not text")
    elif mapping_error:
        validator.fail_file("invalid_mapping", mapping_error)


def _input(validator: _Validator, raw: decoding.HashingReader, sniffed: dict) -> dict:
    """How the input was read: its fingerprint and size, encoding, delimiter, dates, header."""
    return {
        "sha256": raw.sha256.hexdigest(),
        "bytes": raw.bytes,
        **sniffed,
        "decimal_comma_values": validator.decimal_commas,
        "dates": validator.dates.describe(),
        "header": validator.header or [],
        "columns": validator.columns,
    }


def _open_text(raw: decoding.HashingReader, budget: decoding.Budget, sniffed: dict) -> io.TextIOBase:
    """The object as text: gunzipped when it is gzip (magic number), decoded with the detected
    codec. Fills ``sniffed`` with what was decided (compression, encoding, delimiter) and the head."""
    first = raw.read(decoding.HEAD_BYTES)
    compressed = first[:2] == b"\x1f\x8b"
    source = decoding.PrefixedReader(first, raw)
    if compressed:
        source = decoding.GzipReader(source, limit=budget.max_stream_bytes)
    sniffed["compression"] = "gzip" if compressed else None
    head = source.read(decoding.HEAD_BYTES) or b""
    while compressed and len(head) < decoding.HEAD_BYTES and (more := source.read(decoding.HEAD_BYTES - len(head))):
        head += more  # gzip reads return what one block inflates to: gather the whole head
    codec, codec_reason = decoding.detect_encoding(head)
    delimiter = decoding.sniff_delimiter(head.decode(codec, errors="replace"))
    sniffed.update(head=head, encoding=codec, encoding_reason=codec_reason, delimiter=delimiter)
    return io.TextIOWrapper(
        io.BufferedReader(decoding.PrefixedReader(head, source), buffer_size=decoding.HEAD_BYTES),
        encoding=codec,
        errors="replace",
        newline="",
    )


def _report(validator: _Validator, mapping: ColumnMapping) -> dict:
    """The report's counts and findings (``input`` is added by the caller)."""
    return {
        "rows_in": validator.rows_in,
        "rows_clean": validator.rows_clean,
        "rows_quarantined": validator.rows_quarantined,
        "file_reason": validator.file_reason,
        "file_detail": validator.file_detail,
        "missing_columns": validator.missing_columns,
        "rules": {rule: validator.counts[rule] for rule in (*RULES, *FILE_RULES) if validator.counts[rule]},
        "examples": {rule: lines for rule, lines in validator.examples.items() if lines},
        "missing_values": {column: count for column, count in validator.missing_optional.items() if count},
        "frequency": infer_frequency(validator.days, mapping.frequency),
        "frequency_source": "mapping" if mapping.frequency else "inferred",
        "series": len(validator.series),
        "date_range": [min(validator.days), max(validator.days)] if validator.days else None,
    }


def _refused_report(refusal: decoding.FileRefused, raw: decoding.HashingReader, sniffed: dict, mapping: ColumnMapping) -> dict:
    """The report of a file refused while it was read (a budget passed, a broken gzip stream).

    Reading stopped there, so the file is not split into rows: the counts are 0 and whatever the
    sinks already received is void (the caller discards it; the raw object stays as it is). The
    fingerprint is given only when the whole object could be read within its budget."""
    sha256 = None
    if refusal.reason != "too_large":
        try:
            raw.drain()
            sha256 = raw.sha256.hexdigest()
        except decoding.FileRefused:
            pass
    sniffed.pop("head", None)
    return {
        "rows_in": 0,
        "rows_clean": 0,
        "rows_quarantined": 0,
        "file_reason": refusal.reason,
        "file_detail": refusal.detail,
        "missing_columns": None,
        "rules": {},
        "examples": {},
        "missing_values": {},
        "input": {"sha256": sha256, "bytes": raw.bytes, **sniffed},
        "frequency": infer_frequency((), mapping.frequency),
        "frequency_source": "mapping" if mapping.frequency else "inferred",
        "series": 0,
        "date_range": None,
    }


def describe_reasons(report: dict) -> str:
    """One line for people: ``120 in, 113 clean, 7 quarantined (negative_quantity 2, ...)``."""
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(report["rules"].items(), key=lambda item: -item[1]))
    line = f"{report['rows_in']} in, {report['rows_clean']} clean, {report['rows_quarantined']} quarantined"
    if report.get("file_reason"):
        line += f"; whole file: {report['file_reason']}"
    return line + (f" ({rules})" if rules else "")
