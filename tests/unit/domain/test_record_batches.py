"""decoding.record_batches against the line-by-line reader it replaced: the same records, line
numbers and refusals on any text, whatever the block size (blocks of a few characters cut every
kind of record: quoted fields across lines, \\r\\n pairs, over-long lines)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from item_prediction.domain import decoding


class _BoundedLines:
    """The former reader's line source: each line read through readline, the record's characters
    counted, refused as soon as it passes ``limit``."""

    def __init__(self, text: io.TextIOBase, limit: int) -> None:
        self.text, self.limit, self.used, self.line = text, limit, 0, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.limit - self.used + 1)
        if not line:
            raise StopIteration
        self.line += 1
        self.used += len(line)
        if self.used > self.limit:
            detail = f"the record reaching line {self.line} is longer than {self.limit} characters (MAX_RECORD_BYTES)"
            raise decoding.FileRefused("record_too_large", detail)
        return line


def line_by_line(text: str, delimiter: str, limit: int) -> tuple[list, tuple | None]:
    """(records, refusal) as the former ``decoding.records`` gave them, record by record."""
    lines = _BoundedLines(io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8", newline=""), limit)
    reader, found = csv.reader(lines, delimiter=delimiter), []
    try:
        while True:
            lines.used = 0
            try:
                fields = next(reader)
            except StopIteration:
                return found, None
            except csv.Error:
                found.append((reader.line_num, None))
                continue
            if fields and "".join(fields).strip():
                found.append((reader.line_num, fields))
    except decoding.FileRefused as refusal:
        return found, (refusal.reason, refusal.detail)


def in_batches(text: str, delimiter: str, limit: int) -> tuple[list, tuple | None]:
    stream = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8", newline="")
    found = []
    try:
        for batch, held in decoding.record_batches(stream, delimiter, limit):
            assert batch and held > 0
            found += batch
    except decoding.FileRefused as refusal:
        return found, (refusal.reason, refusal.detail)
    return found, None


PIECES = st.sampled_from(["a", "bb", " ", ",", ";", '"', '""', "\n", "\r\n", "\r", "\x0b", "\x85", "\u2028", "x" * 30, "é"])
TEXTS = st.lists(PIECES, max_size=60).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.sampled_from([",", ";"]), st.integers(1, 12), st.integers(3, 80))
def test_batches_give_what_the_line_by_line_reader_gave(text, delimiter, block, limit):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decoding, "BLOCK_CHARS", block)
        assert in_batches(text, delimiter, limit) == line_by_line(text, delimiter, limit)


@pytest.mark.parametrize("block", [5, 64, 1 << 18])
def test_an_export_with_quotes_crlf_and_blank_records_reads_as_before(monkeypatch, block):
    monkeypatch.setattr(decoding, "BLOCK_CHARS", block)
    rows = ['2024-01-01,"A, with comma",S1,3\r\n', ",,,\r\n", "\r\n", '2024-01-02,"multi\nline",S1,4\r\n', "2024-01-03,B,S2,5"]
    text = "date,item_id,store_id,quantity\r\n" + "".join(rows * 50)
    found, refusal = in_batches(text, ",", 1 << 20)
    assert refusal is None and (found, refusal) == line_by_line(text, ",", 1 << 20)
    assert found[1] == (2, ["2024-01-01", "A, with comma", "S1", "3"])
    assert found[2] == (6, ["2024-01-02", "multi\nline", "S1", "4"])


def test_an_oversized_record_is_refused_after_the_records_before_it(monkeypatch):
    monkeypatch.setattr(decoding, "BLOCK_CHARS", 16)
    text = "a,b\n" * 10 + "c," + "x" * 100 + "\nd,e\n"
    found, refusal = in_batches(text, ",", 50)
    assert len(found) == 10
    assert refusal == ("record_too_large", "the record reaching line 11 is longer than 50 characters (MAX_RECORD_BYTES)")
