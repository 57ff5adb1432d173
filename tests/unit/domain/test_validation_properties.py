"""Property: whatever bytes DataValidation is fed, it never crashes and never loses a row.

"Row" is defined in :mod:`item_prediction.domain.validation`: every record the CSV reader returns
after the header (every record, for a file that is not text), blank records aside. The test
counts records independently of the validator when the input is text it built itself, so the
validator cannot pass by under-counting its input.
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import date

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from item_prediction.domain import schema, validation
from item_prediction.domain.schema import ColumnMapping

TODAY = date(2024, 6, 1)
FIELD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "2024-01-01",
            "31/12/2023",
            "12/31/2023",
            "01.02.24",
            "2024-01-01T23:00:00+05:00",
            "2024-01-02T01:00:00Z",
            "2024-01-03 10:00",
            "20240104",
            "3rd of March 2024",
            "May",
            "3",
            "2024",
            "9999-12-31",
            "0001-01-01",
            "A",
            "-1",
            "1e9",
            "1e400",
            "inf",
            "nan",
            "NA",
            "",
            "yes",
            "maybe",
            "2,5",
            '"quoted,comma"',
            "\x00",
            "\ufffd",
        ]
    ),
    st.integers(-10, 10).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
ROWS = st.lists(st.lists(FIELD, min_size=0, max_size=8), max_size=30)
HEADERS = st.sampled_from(
    [
        ["date", "item_id", "store_id", "quantity", "unit_price", "promotion"],
        ["date", "item_id", "quantity"],
        ["Date", " SKU ", "Units"],
        ["date", "item_id", "quantity", "quantity"],
        ["x"],
    ]
)
MAPPINGS = st.sampled_from(
    [
        ColumnMapping.identity(),
        ColumnMapping(columns={"item_id": "SKU", "quantity": "Units"}),
        ColumnMapping(dayfirst=True, decimal=","),
        ColumnMapping(date_format="%d/%m/%Y"),
        ColumnMapping(frequency="W"),
    ]
)


def _accounts(data: bytes, chunk_rows: int, mapping: ColumnMapping | None = None, **kwargs) -> dict:
    mapping = mapping or ColumnMapping.identity()
    clean, quarantined = [], []
    report = validation.validate(
        io.BytesIO(data),
        mapping,
        clean_sink=clean.append,
        quarantine_sink=quarantined.append,
        today=TODAY,
        chunk_rows=chunk_rows,
        **kwargs,
    )
    if report["file_reason"] in validation.REFUSED:  # refused while read: no rows, the sinks' output is void
        assert report["rows_in"] == report["rows_clean"] == report["rows_quarantined"] == 0
        return report
    clean_rows = sum(len(frame) for frame in clean)
    quarantined_rows = sum(len(frame) for frame in quarantined)
    assert clean_rows == report["rows_clean"] and quarantined_rows == report["rows_quarantined"]
    assert clean_rows + quarantined_rows == report["rows_in"]
    for frame in quarantined:
        assert frame["_reasons"].ne("").all(), "every quarantined row says why"
        known = set(validation.RULES) | set(validation.FILE_RULES)
        assert all(set(reasons.split(";")) <= known for reasons in frame["_reasons"])
    for frame in clean:  # what passes honours the contract
        assert pd.to_datetime(frame[schema.DATE], format="%Y-%m-%d").le(pd.Timestamp("2024-06-02")).all()
        assert np.isfinite(frame[schema.QUANTITY]).all() and frame[schema.QUANTITY].between(0, schema.MAX_QUANTITY).all()
        assert frame[schema.PRICE].isna().where(frame[schema.PRICE].isna(), frame[schema.PRICE].gt(0)).all()
        assert frame[schema.ITEM].ne("").all() and frame[schema.STORE].ne("").all()
    return report


def _records(text: str) -> int:
    """Non-blank CSV records, header included, counted without the validator."""
    return sum(1 for fields in csv.reader(io.StringIO(text, newline="")) if any(field.strip() for field in fields))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.integers(1, 50))
def test_arbitrary_bytes(data, chunk_rows):
    _accounts(data, chunk_rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HEADERS, ROWS, st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig", "cp1252"]), st.integers(1, 10), MAPPINGS)
def test_csv_like_text(header, rows, encoding, chunk_rows, mapping):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    text = buffer.getvalue()
    report = _accounts(text.encode(encoding, errors="replace"), chunk_rows, mapping)
    if encoding in ("utf-8", "utf-8-sig") and report["input"]["delimiter"] == "," and "\x00" not in text and "\r" not in text:
        # text: the first record is the header; a file judged not text (control characters) has none
        header_records = 0 if report["file_reason"] in ("binary_content", "unsupported_format") else 1
        assert report["rows_in"] == max(0, _records(text) - header_records)


@settings(max_examples=100, deadline=None)
@given(HEADERS, ROWS, st.booleans())
def test_a_broken_mapping_never_loses_a_row(header, rows, with_error):
    text = "\n".join(",".join(row) for row in [header, *rows])
    _accounts(text.encode(), 7, mapping_error="bad mapping" if with_error else None)


@settings(max_examples=100, deadline=None)
@given(HEADERS, ROWS)
def test_gzip_of_csv_like_text_truncated_anywhere(header, rows):
    text = "\n".join(",".join(row) for row in [header, *rows])
    data = gzip.compress(text.encode(), mtime=0)
    for cut in (len(data), len(data) // 2, 12):
        _accounts(data[:cut], 5)
