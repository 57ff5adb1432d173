"""Uploads built to hurt: every budget refuses the file as a whole with its reason, in bounded memory.

Memory is asserted with tracemalloc's peak (Python allocations during the call), never with time.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib
from datetime import date

import pandas as pd
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.domain import decoding, validation
from item_prediction.domain.schema import ColumnMapping

TODAY = date(2024, 6, 1)
HEADER = "date,item_id,store_id,quantity,unit_price,promotion\n"
ROW = "2024-01-01,A,S1,3,2.5,0\n"
MiB = 1 << 20


def run(data: bytes | io.RawIOBase, **kwargs):
    clean, quarantined = [], []
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    report = validation.validate(
        stream, ColumnMapping.identity(), clean_sink=clean.append, quarantine_sink=quarantined.append, today=TODAY, **kwargs
    )
    return report, clean, quarantined


def peak_of(function):
    """(result, peak bytes Python allocated while ``function`` ran)."""
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused_with(report: dict, reason: str) -> None:
    assert report["file_reason"] == reason and report["file_detail"]
    assert report["rows_in"] == report["rows_clean"] == report["rows_quarantined"] == 0
    assert reason in validation.FILE_RULES and reason in validation.REFUSED


def test_a_gzip_bomb_of_zeros_is_refused_in_bounded_memory():
    bomb = gzip.compress(bytes(50 * MiB), mtime=0)
    assert len(bomb) < 100_000  # 50 MB that travel as KBs
    report, peak = peak_of(lambda: run(bomb)[0])
    refused_with(report, "record_too_large")  # no line break: one record, stopped at 1 MiB
    assert peak < 6 * MiB, peak
    assert report["input"]["sha256"] and report["input"]["bytes"] == len(bomb)


def test_one_9_mb_line_is_never_held_whole():
    line = gzip.compress((HEADER + "2024-01-01," + "A" * (9 * MiB) + ",S1,1,2,0\n").encode(), mtime=0)
    assert len(line) < 50_000
    (report, clean, quarantined), peak = peak_of(lambda: run(line))
    refused_with(report, "record_too_large")
    assert peak < 6 * MiB, peak  # the line is 9 MB: holding it whole (as text and as a field) would pass this
    assert not clean and not quarantined


def test_a_record_over_budget_across_quoted_line_breaks_is_refused():
    quoted = '"' + "0123456789\n" * 200 + '"'
    report, _, _ = run((HEADER + f"2024-01-01,{quoted},S1,1,2,0\n").encode(), budget=decoding.Budget(max_record_bytes=1000))
    refused_with(report, "record_too_large")
    fine, clean, _ = run((HEADER + f"2024-01-01,{quoted},S1,1,2,0\n").encode(), budget=decoding.Budget(max_record_bytes=4000))
    assert fine["file_reason"] is None and fine["rows_in"] == 1  # the same record within its budget is a row


def test_a_stream_that_inflates_past_its_budget_is_refused():
    bomb = gzip.compress((HEADER + ROW * 1_000_000).encode(), mtime=0)  # 24 MB of rows
    report, clean, _ = run(bomb, budget=decoding.Budget(max_stream_bytes=4 * MiB))
    refused_with(report, "decompressed_too_large")
    assert "MAX_STREAM_BYTES" in report["file_detail"]
    assert clean  # chunks went to the sinks before the budget was passed: the caller discards them (steps)


def test_too_many_columns_are_refused_at_the_header():
    header = HEADER.strip() + "," + ",".join(f"extra{index}" for index in range(200)) + "\n"
    report, clean, quarantined = run((header + ROW).encode())
    refused_with(report, "too_many_columns")
    assert "206 columns" in report["file_detail"] and not clean and not quarantined
    ok, _, _ = run((header + ROW).encode(), budget=decoding.Budget(max_columns=206))
    assert ok["file_reason"] != "too_many_columns"


class Untouchable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the object was read although its declared size is over budget")


@pytest.mark.parametrize("sizes", [(3 << 30, None), (None, 3 << 30), (10, 3 << 30)])
def test_a_declared_size_over_budget_is_refused_before_reading(sizes):
    report, _, _ = run(Untouchable(), sizes=sizes)
    refused_with(report, "too_large")
    assert report["input"]["sha256"] is None and report["input"]["bytes"] == 0


def test_an_object_longer_than_declared_is_stopped_at_its_budget():
    report, _, _ = run((HEADER + ROW * 1000).encode(), budget=decoding.Budget(max_object_bytes=5000))
    refused_with(report, "too_large")
    assert report["input"]["sha256"] is None  # not read to its end


def test_multi_member_gzip_with_padding_reads_every_member():
    rows = [f"2024-01-{day:02d},A,S1,{day},2.5,0\n" for day in range(1, 31)]
    data = gzip.compress((HEADER + "".join(rows[:10])).encode()) + gzip.compress("".join(rows[10:]).encode()) + b"\0" * 8
    report, clean, _ = run(data)
    assert report["file_reason"] is None and report["rows_clean"] == 30
    assert list(pd.concat(clean)["quantity"]) == list(range(1, 31))


def test_gzip_reader_returns_at_most_what_is_asked_and_inflates_linearly():
    compressed = zlib.compressobj(wbits=31)
    data = compressed.compress(bytes(20 * MiB)) + compressed.flush()
    reader = decoding.GzipReader(io.BytesIO(data))
    sizes = []
    while chunk := reader.read(1 << 16):
        sizes.append(len(chunk))
    assert max(sizes) <= 1 << 16 and sum(sizes) == 20 * MiB == reader.bytes


def test_a_truncated_gzip_inside_the_head_is_a_reason_not_a_crash():
    report, _, _ = run(gzip.compress((HEADER + ROW).encode())[:15])
    refused_with(report, "truncated_gzip")


def test_the_pending_records_are_bounded_by_bytes_not_only_by_count():
    header = HEADER.strip() + ",notes\n"
    rows = "".join(f"2024-01-{day:02d},A,S1,1,2,0,{'x' * 20_000}\n" for day in range(1, 29))
    report, clean, _ = run((header + rows).encode(), chunk_rows=100_000, chunk_bytes=100_000)
    assert report["rows_clean"] == 28
    assert len(clean) >= 5 and max(len(frame) for frame in clean) <= 5  # 20 KB records: 5 fill 100 KB


def test_budget_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAX_RECORD_BYTES", "4096")
    monkeypatch.setenv("MAX_COLUMNS", "12")
    budget = decoding.Budget.of(Settings.from_env())
    assert budget == decoding.Budget(max_record_bytes=4096, max_columns=12)
    assert decoding.Budget() == decoding.Budget(1 << 30, 1 << 30, 1 << 20, 200)
    monkeypatch.setenv("MAX_STREAM_BYTES", "lots")
    with pytest.raises(ValueError, match="MAX_STREAM_BYTES"):
        Settings.from_env()
