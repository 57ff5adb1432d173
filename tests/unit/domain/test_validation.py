"""Every validation rule, file-level failure, encoding and the row-accounting invariant."""

from __future__ import annotations

import gzip
import io
from datetime import date

import pandas as pd
import pytest

from item_prediction import schema, validation
from item_prediction.sample_data import INVALID_KINDS, generate_sales
from item_prediction.schema import ColumnMapping, MappingError

TODAY = date(2024, 6, 1)
HEADER = "date,item_id,store_id,quantity,unit_price,promotion\n"
GOOD = "2024-01-01,A,S1,3,2.5,0\n"


def run(content: bytes | str, mapping: ColumnMapping | None = None, chunk_rows: int = 1000):
    data = content.encode() if isinstance(content, str) else content
    clean, quarantined = [], []
    report = validation.validate(
        io.BytesIO(data), mapping or ColumnMapping.identity(), clean_sink=clean.append,
        quarantine_sink=quarantined.append, today=TODAY, chunk_rows=chunk_rows,
    )  # fmt: skip
    clean_frame = pd.concat(clean, ignore_index=True) if clean else pd.DataFrame()
    quarantine_frame = pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame()
    assert len(clean_frame) + len(quarantine_frame) == report["rows_in"]
    return report, clean_frame, quarantine_frame


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        ("2024-01-02,A,S1,-1,2.5,0", "negative_quantity"),
        ("2024-01-02,A,S1,99999999,2.5,0", "absurd_quantity"),
        ("2024-01-02,A,S1,three,2.5,0", "invalid_quantity"),
        ("2024-01-02,A,S1,inf,2.5,0", "invalid_quantity"),
        ("2024-01-02,A,S1,,2.5,0", "missing_quantity"),
        ("2024-13-45,A,S1,1,2.5,0", "invalid_date"),
        (",A,S1,1,2.5,0", "missing_date"),
        ("2030-01-01,A,S1,1,2.5,0", "future_date"),
        ("1901-01-01,A,S1,1,2.5,0", "date_out_of_range"),
        ("2024-01-02,,S1,1,2.5,0", "missing_item_id"),
        (f"2024-01-02,{'X' * 200},S1,1,2.5,0", "invalid_id"),
        ("2024-01-02,A,S1,1,cheap,0", "invalid_price"),
        ("2024-01-02,A,S1,1,-2,0", "non_positive_price"),
        ("2024-01-02,A,S1,1,5000000,0", "absurd_price"),
        ("2024-01-02,A,S1,1,2.5,perhaps", "invalid_promotion"),
        ("2024-01-01,A,S1,4,2.5,0", "duplicate_key"),
        ("2024-01-02,A,S1", "field_count"),
        ("2024-01-02,A,S1,1,2.5,0,extra", "field_count"),
    ],
)
def test_each_rule_quarantines_its_row_with_its_reason(row, rule):
    report, clean, quarantined = run(HEADER + GOOD + row + "\n")
    assert report["rows_in"] == 2 and len(clean) == 1
    assert list(quarantined["_reasons"]) == [rule]
    assert list(quarantined["_line"]) == [3]
    assert report["rules"] == {rule: 1}


def test_a_row_lists_every_rule_it_breaks():
    _, _, quarantined = run(HEADER + "2030-01-01,A,S1,-5,0,maybe\n")
    assert quarantined["_reasons"].iloc[0] == "future_date;negative_quantity;non_positive_price;invalid_promotion"


def test_dates_pandas_cannot_read_fall_back_to_dateutil():
    report, clean, _ = run(HEADER + "3rd of March 2024,A,S1,1,2,0\nMar 4 2024,A,S1,1,2,0\n")
    assert list(clean["date"]) == ["2024-03-03", "2024-03-04"]
    assert report["rows_quarantined"] == 0


def test_clean_rows_are_typed_and_extra_columns_kept():
    _, clean, _ = run("date,item_id,quantity,colour\n2024-01-01, A ,3,red\n2024-01-02,A,4.5,blue\n")
    assert list(clean.columns) == ["date", "item_id", "store_id", "quantity", "unit_price", "promotion", "colour"]
    assert list(clean["item_id"]) == ["A", "A"] and list(clean["store_id"]) == [schema.NO_STORE] * 2
    assert list(clean["quantity"]) == [3.0, 4.5] and list(clean["colour"]) == ["red", "blue"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty_file"),
        (b"\n\n  \n", "empty_file"),
        (bytes(range(256)) * 4, "binary_content"),
        ("sku,units\nA,1\nB,2\n".encode(), "missing_required_columns"),
        ("date,item_id,quantity,quantity\n2024-01-01,A,1,2\n".encode(), "duplicate_columns"),
    ],
)
def test_a_file_that_cannot_be_used_is_quarantined_whole(content, reason):
    report, clean, quarantined = run(content)
    assert clean.empty
    assert report["file_reason"] == reason
    assert report["rows_quarantined"] == report["rows_in"]
    if report["rows_in"]:
        assert set(quarantined["_reasons"]) == {reason}


def test_missing_columns_are_named():
    report, _, _ = run("sku,units\nA,1\n")
    assert report["missing_columns"] == ["date", "item_id", "quantity"]


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda text: text.encode("utf-8"), "utf-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig"),
        (lambda text: text.encode("utf-16"), "utf-16"),
        (lambda text: text.encode("latin-1"), "latin-1"),
    ],
)
def test_encodings_and_bom(encode, encoding):
    text = "date;item_id;quantity;store_id\n2024-01-01;Crème;3;Zürich\n2024-01-02;Crème;4;Zürich\n"
    report, clean, _ = run(encode(text))
    assert report["input"]["encoding"] == encoding and report["input"]["delimiter"] == ";"
    assert list(clean["item_id"]) == ["Crème", "Crème"] and report["rows_clean"] == 2


def test_invalid_utf8_late_in_a_file_quarantines_only_that_row():
    good = "".join(f"2023-{month:02d}-{day:02d},A{n},S1,1,2,0\n" for n in range(150) for month in range(1, 13) for day in (1, 15))
    assert len(good) > validation.HEAD_BYTES  # the decoder is chosen on the head, which is valid utf-8
    body = (HEADER + good).encode() + b"2024-01-02,B\xff\xfe,S1,1,2,0\n"
    report, clean, quarantined = run(body)
    assert report["input"]["encoding"] == "utf-8"
    assert report["rows_clean"] == 3600 and list(quarantined["_reasons"]) == ["encoding_error"]


def test_gzip_input_is_read_and_fingerprinted_as_stored():
    data = gzip.compress((HEADER + GOOD).encode(), mtime=0)
    report, clean, _ = run(data)
    assert report["input"]["compression"] == "gzip" and len(clean) == 1
    assert report["input"]["bytes"] == len(data)
    import hashlib

    assert report["input"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_truncated_gzip_keeps_what_it_read_and_says_so():
    data = gzip.compress((HEADER + GOOD.replace("01-01", "01-0{}") * 1).encode() + b"".join(
        f"2024-02-{day:02d},A,S1,1,2,0\n".encode() for day in range(1, 29)))[:-30]
    report, clean, quarantined = run(data)
    assert report["stream_error"] == "gzip stream is truncated"
    assert report["rows_clean"] >= 1
    assert len(clean) + len(quarantined) == report["rows_in"]


def test_duplicates_are_caught_across_chunks():
    rows = "".join(f"2024-01-{day:02d},A,S1,1,2,0\n" for day in range(1, 11))
    report, clean, quarantined = run(HEADER + rows + "2024-01-02,A,S1,9,2,0\n", chunk_rows=3)
    assert report["rows_clean"] == 10 and list(quarantined["_reasons"]) == ["duplicate_key"]


def test_generated_sample_matches_its_ground_truth():
    sample = generate_sales(seed=11)
    report, clean, quarantined = run(sample.content, chunk_rows=777)
    assert dict(zip(quarantined["_line"], quarantined["_reasons"])) == sample.invalid_lines
    assert len(clean) == len(sample.frame)
    assert {rule for rule, _ in INVALID_KINDS} | {"duplicate_key", "field_count"} == set(report["rules"])


def test_mapping_renames_user_columns_case_insensitively():
    mapping = ColumnMapping.from_json('{"columns": {"date": "Order Date", "item_id": "SKU", "quantity": "Units"}}')
    report, clean, _ = run("order date,sku,UNITS\n2024-01-01,A,3\n", mapping)
    assert report["input"]["columns"] == ["date", "item_id", "quantity"] and len(clean) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"columns": {"price": "P"}}', "unknown canonical columns"),
        ('{"columns": {"date": "X", "item_id": "X"}}', "one source column for two"),
        ('{"frequency": "M"}', "'frequency' must be one of"),
        ('{"colums": {}}', "unknown keys"),
    ],
)
def test_bad_mapping_files_get_clear_errors(text, message):
    with pytest.raises(MappingError, match=message):
        ColumnMapping.from_json(text)


def test_frequency_is_inferred_or_configured():
    assert validation.infer_frequency({"2024-01-01", "2024-01-02", "2024-01-04"}, None) == "D"
    assert validation.infer_frequency({"2024-01-01", "2024-01-08", "2024-01-15"}, None) == "W"
    assert validation.infer_frequency({"2024-01-01", "2024-01-02"}, "W") == "W"
