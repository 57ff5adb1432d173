"""From stored bytes to text records: compression, encoding, delimiter and file-type sniffing.

Standard library only. Everything here is decided on the first ``HEAD_BYTES`` of the (possibly
gzip-decompressed) file, then applied to the whole stream, so memory never depends on file size.
Decisions are reported with the reason they were made, because "why did my file read like this"
is the first question a user asks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, compress
from typing import BinaryIO

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")

# Magic numbers of files people upload instead of CSV: a reason they can act on.
FOREIGN_FORMATS = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?): export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an OLE document (an Excel .xls workbook?): export the sheet as CSV"),
    (b"PAR1", "a Parquet file: upload CSV"),
    (b"%PDF", "a PDF document: upload CSV"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"BZh", "a bzip2 archive: upload CSV or gzip-compressed CSV"),
    (b"\xfd7zXZ", "an xz archive: upload CSV or gzip-compressed CSV"),
)

READ_BLOCK = 1 << 16

csv.field_size_limit(1 << 20)  # a 1 MB field is a broken file, not data; csv.Error is caught per record


@dataclass(frozen=True)
class Budget:
    """How much of one upload DataValidation takes on; past any of these the file is refused as a
    whole (its reason in the report), never a crash. The defaults fit the 1,024 MB function; an
    operator tunes them with the ``MAX_*`` settings (:mod:`item_prediction.aws.settings`)."""

    # 1 GiB of CSV (about 26 M rows of a 40-byte-per-row export) is validated in about 25% of the
    # 900 s timeout at 1,024 MB, peak 554 MB (scripts/bench_validation_memory.py; README, "How big an upload can be").
    max_object_bytes: int = 1 << 30  # the object as stored (``too_large``)
    max_stream_bytes: int = 1 << 30  # a gzip file once gunzipped (``decompressed_too_large``); a plain one is its object
    max_record_bytes: int = 1 << 20  # one CSV record, in characters (``record_too_large``)
    max_columns: int = 200  # fields of the header (``too_many_columns``)

    @classmethod
    def of(cls, settings) -> Budget:
        """The budget an object with the same ``max_*`` attributes (the Settings) names."""
        return cls(*(getattr(settings, name) for name in cls.__dataclass_fields__))


# File rules found while reading: reading stops there and the file is refused as a whole.
REFUSALS = ("too_large", "decompressed_too_large", "record_too_large", "too_many_columns", "truncated_gzip", "corrupt_gzip")


class FileRefused(Exception):
    """The file is refused as a whole while it is read: ``reason`` is a file rule, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def check_declared_sizes(sizes, limit: int) -> None:
    """Refuse (``too_large``) before reading when a size the event or the store declares is over ``limit``."""
    for size in sizes:
        if size is not None and int(size) > limit:
            raise FileRefused("too_large", f"the object is {int(size)} bytes, more than {limit} (MAX_OBJECT_BYTES)")


class HashingReader:
    """Passes reads through, hashing and counting the bytes as they were stored; refuses the file
    (``too_large``) once more than ``limit`` bytes came through."""

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size if size > 0 else READ_BLOCK) or b""
        self.sha256.update(chunk)
        self.bytes += len(chunk)
        if self._limit is not None and self.bytes > self._limit:
            raise FileRefused("too_large", f"the object is larger than {self._limit} bytes (MAX_OBJECT_BYTES)")
        return chunk

    def drain(self, block: int = 1 << 20) -> None:
        """Read to the end, so the fingerprint covers the whole object even if parsing stopped early."""
        while self.read(block):
            pass


class GzipReader:
    """Streaming gzip decompression with the standard library (``zlib.decompressobj(wbits=31)``),
    at most ``size`` bytes out per read (``max_length``), so a highly compressible input costs
    time and memory linear in what is read. Concatenated members are read one after another
    (zero padding between them is skipped, as ``gzip`` does). A truncated or corrupt stream,
    or one inflating past ``limit`` bytes, refuses the file (:class:`FileRefused`)."""

    def __init__(self, stream, limit: int | None = None) -> None:
        self._stream = stream
        self._inflate = zlib.decompressobj(wbits=31)
        self._limit = limit
        self.bytes = 0  # decompressed bytes returned so far

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else READ_BLOCK
        while True:
            try:
                out = self._next(size)
            except zlib.error as exc:
                detail = f"the gzip stream is corrupt after {self.bytes} decompressed bytes ({exc})"
                raise FileRefused("corrupt_gzip", detail) from None
            if out is None:
                return b""
            if out:
                self.bytes += len(out)
                if self._limit is not None and self.bytes > self._limit:
                    raise FileRefused("decompressed_too_large", f"the file inflates past {self._limit} bytes (MAX_STREAM_BYTES)")
                return out

    def _next(self, size: int) -> bytes | None:
        """Some decompressed bytes (maybe none yet), or None at the clean end of the last member."""
        if self._inflate.eof:  # a member ended: what follows is the next member, padding or nothing
            rest = self._inflate.unused_data.lstrip(b"\0")
            while not rest:
                chunk = self._stream.read(READ_BLOCK)
                if not chunk:
                    return None
                rest = chunk.lstrip(b"\0")
            self._inflate = zlib.decompressobj(wbits=31)
            return self._inflate.decompress(rest, size)
        data = self._inflate.unconsumed_tail or self._stream.read(READ_BLOCK)
        if data:
            return self._inflate.decompress(data, size)
        out = self._inflate.decompress(b"", size)  # output zlib still holds for the end of the input
        if out or self._inflate.eof:
            return out
        raise FileRefused("truncated_gzip", f"the gzip stream ends before its end marker, after {self.bytes} decompressed bytes")


class PrefixedReader(io.RawIOBase):
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


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when NULs sit at every other byte (ASCII text in UTF-16), else None."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0 : pairs * 2 : 2].count(0), head[1 : pairs * 2 : 2].count(0)
    if odd >= 0.4 * pairs and even <= 0.02 * pairs:
        return "utf-16-le"
    if even >= 0.4 * pairs and odd <= 0.02 * pairs:
        return "utf-16-be"
    return None


def detect_encoding(head: bytes) -> tuple[str, str]:
    """(codec, how it was decided) for a file's first bytes. Any bytes decode with the result:
    UTF-8 and UTF-16 are recognised by their BOM or their shape, anything else is read as
    Windows-1252 (a superset of Latin-1 for text) when it decodes, else as Latin-1."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "utf-8 BOM"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "utf-16 BOM"
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16, f"{utf16} without BOM (NUL bytes at every other position)"
    # A head cut in the middle of a multi-byte character is still UTF-8: ignore its last 3 bytes.
    sample = head[:-3] if len(head) >= HEAD_BYTES else head
    try:
        sample.decode("utf-8")
        return "utf-8", "valid utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252", "not utf-8: decoded as Windows-1252"
    except UnicodeDecodeError:
        return "latin-1", "neither utf-8 nor Windows-1252: decoded as latin-1"


def foreign_format(head: bytes) -> str | None:
    """What the file is when it is recognisably not text (a workbook, an archive, an image)."""
    for magic, description in FOREIGN_FORMATS:
        if head.startswith(magic):
            return description
    return None


def looks_binary(head: bytes, codec: str) -> bool:
    """True for content that is not text: NUL bytes or many control characters."""
    if codec.startswith("utf-16"):
        return False
    if b"\x00" in head:
        return True
    text = head.decode("latin-1")
    control = sum(1 for char in text if ord(char) < 32 and char not in "\r\n\t\f\v")
    return len(text) > 0 and control / len(text) > 0.05


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines most consistently (``,`` when nothing does).

    Scored on up to 20 non-blank lines: how many lines have the header's field count, then how
    many fields the header has. Quoted fields are honoured, so ``"1,5"`` does not vote for ``,``.
    """
    lines = [line for line in sample.splitlines()[:21] if line.strip()][:20]
    if not lines:
        return ","
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        try:
            counts = [len(fields) - 1 for fields in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            counts = [line.count(delimiter) for line in lines]
        if not counts or counts[0] == 0:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    return best


# Records are parsed a block of lines at a time: the lines go to the C csv reader as a list, and
# each record's size is checked from the lengths of the lines it took. Reading the stream line by
# line through a Python iterator (to refuse an oversized record while it is read) cost more than
# the csv parsing itself. Memory stays bounded: a block is BLOCK_CHARS plus at most one record.
BLOCK_CHARS = 1 << 18
# str.splitlines also breaks at these, where a text stream's readline (newline="") does not.
_OTHER_BREAKS = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_READLINE_LINES = re.compile("[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _block(text: io.TextIOBase, limit: int) -> str:
    """About BLOCK_CHARS of ``text``, ending at a line end: the line read into is completed, up to
    ``limit + 1`` more characters (so a longer one is refused, never held whole)."""
    block = text.read(BLOCK_CHARS)
    if block and not block.endswith("\n"):  # a \r may be the first half of \r\n: readline takes the rest
        block += text.readline(limit + 1)
    return block


def _lines(block: str) -> list[str]:
    """The block's lines as a text stream's readline (newline="") returns them, terminators kept."""
    return _READLINE_LINES.findall(block) if _OTHER_BREAKS.search(block) else block.splitlines(keepends=True)


def _check_size(sizes: list[int], first: int, end: int, number: int, limit: int) -> None:
    """Refuse the record of lines ``first`` to ``end`` (exclusive) when it passes ``limit``
    characters, naming the line where it does; ``sizes`` are the lines' running lengths and
    ``number`` the physical line before the block."""
    if sizes[end] - sizes[first] <= limit:
        return
    line = next(index for index in range(first, end) if sizes[index + 1] - sizes[first] > limit)
    detail = f"the record reaching line {number + line + 1} is longer than {limit} characters (MAX_RECORD_BYTES)"
    raise FileRefused("record_too_large", detail)


def _parse_lines(lines: list[str], number: int, delimiter: str, limit: int, final: bool):
    """(records of ``lines``, the lines of the last record when it may go on in the next block,
    lines consumed, the refusal of an oversized record or None), record by record: quoted fields
    may span lines, a record may fail to parse. ``number``: physical lines before ``lines``."""
    sizes = list(accumulate(map(len, lines), initial=0))
    reader, parsed, first = csv.reader(lines, delimiter=delimiter), [], 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return parsed, [], len(lines), None
        except csv.Error:
            fields = None
        end = reader.line_num
        try:
            _check_size(sizes, first, end, number, limit)  # a record cut by the block is bounded too
        except FileRefused as refusal:
            return parsed, [], first, refusal  # the records before it are given first
        if end == len(lines) and not final:  # it may continue past the block: parsed again with the next
            return parsed, lines[first:], first, None
        if fields is None or (fields and "".join(fields).strip()):
            parsed.append((number + end, fields))
        first = end


def _one_per_line(lines: list[str], number: int, delimiter: str, limit: int, final: bool) -> list | None:
    """The records of ``lines`` when every line is one whole record (most exports, quoted or not),
    parsed in one call of the C csv reader; None when a record spans lines, may go on past the
    block (a quoted field open at its end) or the reader refuses one: :func:`_parse_lines` decides
    those, record by record."""
    if not lines or max(map(len, lines)) > limit:  # an over-long line (maybe cut by the block) is refused there
        return None
    try:
        rows = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error:
        return None
    # A record spanning lines makes fewer records than lines; only the last one can instead end
    # open at the end of the block, its last field then ending with the line's break.
    if len(rows) != len(lines) or (not final and rows[-1] and rows[-1][-1].endswith(("\n", "\r"))):
        return None
    kept = map(str.strip, map("".join, rows))  # blank records (delimiters and spaces only) are skipped
    return list(compress(zip(range(number + 1, number + len(rows) + 1), rows, strict=True), kept))


FIELD_BYTES, RECORD_BYTES = 56, 64  # what Python adds per field string and per record, about


def _held_bytes(lines: list[str], batch: list) -> int:
    """About what a batch of records costs Python: the characters of its lines plus FIELD_BYTES
    per field and RECORD_BYTES per record (:func:`record_bytes` of one record)."""
    fields = sum(map(len, (fields for _, fields in batch if fields is not None)))
    return sum(map(len, lines)) + FIELD_BYTES * fields + RECORD_BYTES * len(batch)


def record_bytes(fields: list[str]) -> int:
    """:func:`_held_bytes` of one record from its fields (a separator or line end after each)."""
    return sum(map(len, fields)) + (1 + FIELD_BYTES) * len(fields) + RECORD_BYTES


def record_batches(
    text: io.TextIOBase, delimiter: str, max_record: int = Budget.max_record_bytes
) -> Iterator[tuple[list[tuple[int, list[str] | None]], int]]:
    """Batches of (physical line, fields), one per non-blank record (fields is None for a record
    the parser rejects), each with :func:`_held_bytes`.

    Raises FileRefused (``record_too_large``) for a record over ``max_record`` characters, after
    the records before it. A block whose lines are whole records (most exports) is parsed in one
    call of the C csv reader; a block where a quoted field spans lines, record by record."""
    carried: list[str] = []
    number = 0
    while True:
        block = _block(text, max_record)
        lines = carried + _lines(block)
        final = not block
        del block  # the lines hold the text now: one copy at a time
        batch, carried, consumed, refusal = _one_per_line(lines, number, delimiter, max_record, final), [], len(lines), None
        if batch is None:
            batch, carried, consumed, refusal = _parse_lines(lines, number, delimiter, max_record, final)
        if batch:
            yield batch, _held_bytes(lines[:consumed], batch)
        if refusal:
            raise refusal
        number += consumed
        if final:
            return
