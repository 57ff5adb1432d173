"""Property: whatever bytes DataValidation is fed, it never crashes and never loses a row."""

from __future__ import annotations

import io
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from item_prediction import validation
from item_prediction.schema import ColumnMapping

FIELD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["2024-01-01", "31/12/2023", "A", "-1", "1e9", "nan", "", "yes", '"quoted,comma"', "\x00"]),
    st.integers(-10, 10).map(str),
)
CSVISH = st.lists(st.lists(FIELD, min_size=0, max_size=8), max_size=30).map(
    lambda rows: "date,item_id,store_id,quantity,unit_price,promotion\n" + "\n".join(",".join(row) for row in rows)
)


def _accounts(data: bytes, chunk_rows: int) -> None:
    clean, quarantined = [], []
    report = validation.validate(
        io.BytesIO(data), ColumnMapping.identity(), clean_sink=clean.append,
        quarantine_sink=quarantined.append, today=date(2024, 6, 1), chunk_rows=chunk_rows,
    )  # fmt: skip
    clean_rows = sum(len(frame) for frame in clean)
    quarantined_rows = sum(len(frame) for frame in quarantined)
    assert clean_rows == report["rows_clean"] and quarantined_rows == report["rows_quarantined"]
    assert clean_rows + quarantined_rows == report["rows_in"]
    for frame in quarantined:
        assert frame["_reasons"].ne("").all(), "every quarantined row says why"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.integers(1, 50))
def test_arbitrary_bytes(data, chunk_rows):
    _accounts(data, chunk_rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CSVISH, st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]), st.integers(1, 10))
def test_csv_like_text(text, encoding, chunk_rows):
    _accounts(text.encode(encoding, errors="replace"), chunk_rows)


@settings(max_examples=100, deadline=None)
@given(CSVISH)
def test_gzip_of_csv_like_text_truncated_anywhere(text):
    import gzip

    data = gzip.compress(text.encode(), mtime=0)
    for cut in (len(data), len(data) // 2, 12):
        _accounts(data[:cut], 5)
