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
import zlib
from collections.abc import Iterator
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

csv.field_size_limit(1 << 20)  # a 1 MB field is a broken file, not data; csv.Error is caught per record


class HashingReader:
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

    def drain(self, block: int = 1 << 20) -> None:
        """Read to the end, so the fingerprint covers the whole object even if parsing stopped early."""
        while self.read(block):
            pass


class GunzipReader:
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


def records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
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
        if fields and "".join(fields).strip():
            yield reader.line_num, fields
