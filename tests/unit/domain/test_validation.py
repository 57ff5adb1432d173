"""Every validation rule, file-level failure, encoding and the row-accounting invariant."""

from __future__ import annotations

import gzip
import hashlib
import io
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import decoding, schema, validation
from item_prediction.domain.schema import ColumnMapping, MappingError
from lambda_build.sample_data import INVALID_KINDS, generate_sales

TODAY = date(2024, 6, 1)
HEADER = "date,item_id,store_id,quantity,unit_price,promotion\n"
GOOD = "2024-01-01,A,S1,3,2.5,0\n"


def run(content: bytes | str, mapping: ColumnMapping | None = None, chunk_rows: int = 1000, **kwargs):
    data = content.encode() if isinstance(content, str) else content
    clean, quarantined = [], []
    report = validation.validate(
        io.BytesIO(data),
        mapping or ColumnMapping.identity(),
        clean_sink=clean.append,
        quarantine_sink=quarantined.append,
        today=TODAY,
        chunk_rows=chunk_rows,
        **kwargs,
    )
    clean_frame = pd.concat(clean, ignore_index=True) if clean else pd.DataFrame()
    quarantine_frame = pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame()
    if report["file_reason"] not in validation.REFUSED:  # a refused file's partial output is void
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
        ("2024-01-02,A,S1,NA,2.5,0", "missing_quantity"),
        ("2024-01-02,A,,1,2.5,0", "missing_store_id"),
        ("2024-01-02,A,null,1,2.5,0", "missing_store_id"),
        ("2024-01-02,A\x07,S1,1,2.5,0", "invalid_id"),
        ("3,A,S1,1,2.5,0", "invalid_date"),
        ("May,A,S1,1,2.5,0", "invalid_date"),
        ("2024,A,S1,1,2.5,0", "invalid_date"),
        ("2024-05,A,S1,1,2.5,0", "invalid_date"),
        ("2024-06-03,A,S1,1,2.5,0", "future_date"),
        ("2024-13-45,A,S1,1,2.5,0", "invalid_date"),
        (",A,S1,1,2.5,0", "missing_date"),
        ("2030-01-01,A,S1,1,2.5,0", "future_date"),
        ("1e400-01-01,A,S1,1,2.5,0", "invalid_date"),
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


def test_a_date_one_day_ahead_is_allowed_for_time_zones_ahead_of_utc():
    report, clean, _ = run(HEADER + "2024-06-02,A,S1,1,2.5,0\n")
    assert report["rows_clean"] == 1 and list(clean["date"]) == ["2024-06-02"]


def test_a_row_lists_every_rule_it_breaks():
    _, _, quarantined = run(HEADER + "2030-01-01,A,S1,-5,0,maybe\n")
    assert quarantined["_reasons"].iloc[0] == "future_date;negative_quantity;non_positive_price;invalid_promotion"


def test_dates_pandas_cannot_read_fall_back_to_dateutil():
    report, clean, _ = run(HEADER + "3rd of March 2024,A,S1,1,2,0\nMar 4 2024,A,S1,1,2,0\n")
    assert list(clean["date"]) == ["2024-03-03", "2024-03-04"]
    assert report["rows_quarantined"] == 0


def test_dates_with_mixed_utc_offsets_keep_the_date_as_written():
    body = "2024-01-01T23:30:00-05:00,A,S1,1,2,0\n2024-01-02,A,S1,1,2,0\n"
    body += "2024-01-03T01:00:00Z,A,S1,1,2,0\n2024-01-04 10:00,A,S1,1,2,0\n"
    report, clean, _ = run(HEADER + body)
    assert list(clean["date"]) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


@pytest.mark.parametrize(
    ("dates", "expected", "order"),
    [
        (["13/02/2024", "01/03/2024"], ["2024-02-13", "2024-03-01"], "day-first"),
        (["02/13/2024", "03/01/2024"], ["2024-02-13", "2024-03-01"], "month-first"),
        (["01.03.2024", "14.03.24"], ["2024-03-01", "2024-03-14"], "day-first"),
    ],
)
def test_numeric_dates_take_one_order_for_the_whole_file(dates, expected, order):
    body = "".join(f"{day},A,S1,1,2,0\n" for day in dates)
    report, clean, _ = run(HEADER + body)
    assert sorted(clean["date"]) == expected and order in report["input"]["dates"]


def test_numeric_dates_contradicting_the_files_order_are_invalid_not_swapped():
    # The first chunk settles day-first; a later month-first date must not be read day-first.
    body = "13/02/2024,A,S1,1,2,0\n01/03/2024,A,S1,1,2,0\n02/14/2024,A,S1,1,2,0\n"
    report, clean, quarantined = run(HEADER + body, chunk_rows=2)
    assert list(clean["date"]) == ["2024-02-13", "2024-03-01"]
    assert list(quarantined["_reasons"]) == ["invalid_date"]


def test_mapping_settles_ambiguous_dates_and_a_format_is_strict():
    body = "01/02/2024,A,S1,1,2,0\n03/02/2024,A,S1,1,2,0\n"
    _, clean, _ = run(HEADER + body, ColumnMapping(dayfirst=True))
    assert list(clean["date"]) == ["2024-02-01", "2024-02-03"]
    _, clean, _ = run(HEADER + body)  # no evidence, no mapping: month-first, said in the report
    assert list(clean["date"]) == ["2024-01-02", "2024-03-02"]
    report, clean, quarantined = run(
        HEADER + "2024.02.01,A,S1,1,2,0\n2024-02-02,A,S1,1,2,0\n", ColumnMapping(date_format="%Y.%m.%d")
    )
    assert list(clean["date"]) == ["2024-02-01"] and list(quarantined["_reasons"]) == ["invalid_date"]


def test_decimal_commas_in_semicolon_files():
    report, clean, _ = run("date;item_id;quantity;unit_price\n2024-01-01;A;2,5;1,99\n")
    assert list(clean["quantity"]) == [2.5] and list(clean["unit_price"]) == [1.99]
    assert report["input"]["decimal_comma_values"] == 2
    _, _, quarantined = run("date;item_id;quantity\n2024-01-01;A;2,5\n", ColumnMapping(decimal="."))
    assert list(quarantined["_reasons"]) == ["invalid_quantity"]


def test_missing_optional_values_are_clean_and_counted():
    report, clean, _ = run(HEADER + "2024-01-01,A,S1,3,,\n2024-01-02,A,S1,3,n/a,NULL\n2024-01-03,A,S1,3,2,1\n")
    assert report["rows_clean"] == 3
    assert report["missing_values"] == {"unit_price": 2, "promotion": 2}
    assert clean["unit_price"].isna().sum() == 2 and list(clean["promotion"]) == [0, 0, 1]


def test_a_trailing_delimiter_is_an_unnamed_column_not_a_failure():
    report, clean, _ = run("date,item_id,quantity,,\n2024-01-01,A,3,,\n")
    assert report["file_reason"] is None and report["rows_clean"] == 1
    assert report["input"]["header"] == ["date", "item_id", "quantity", "unnamed_4", "unnamed_5"]


def test_quarantine_keeps_each_rows_content_whatever_mix_of_reasons():
    """Ragged and row-rule rejects share one file: each keeps its fields (or its raw record)."""
    body = HEADER + "2024-01-02,A\n" + "2024-01-03,A,S1,-4,2,0\n" + GOOD
    clean, quarantined = CsvGzipWriter(), CsvGzipWriter()
    report = validation.validate(
        io.BytesIO(body.encode()), ColumnMapping.identity(), clean_sink=clean, quarantine_sink=quarantined, today=TODAY
    )
    assert report["rows_quarantined"] == 2
    with quarantined.finish() as handle:
        frame = pd.read_csv(handle, compression="gzip", dtype=str, keep_default_na=False)
    assert list(frame.columns) == [
        "_line",
        "_reasons",
        "date",
        "item_id",
        "store_id",
        "quantity",
        "unit_price",
        "promotion",
        "_raw",
    ]
    ragged = frame[frame["_reasons"] == "field_count"].iloc[0]
    assert ragged["_raw"] == "2024-01-02,A" and ragged["quantity"] == ""
    negative = frame[frame["_reasons"] == "negative_quantity"].iloc[0]
    assert negative["quantity"] == "-4" and negative["item_id"] == "A" and negative["_line"] == "3"


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
        (b"PK\x03\x04" + bytes(range(256)) * 4, "unsupported_format"),
        (b"%PDF-1.7\nsome,thing\n", "unsupported_format"),
        (b"sku,units\nA,1\nB,2\n", "missing_required_columns"),
        (b"date,item_id,quantity,quantity\n2024-01-01,A,1,2\n", "duplicate_columns"),
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
    assert "['sku', 'units']" in report["file_detail"]


def test_a_broken_mapping_quarantines_the_file_with_the_reason():
    report, clean, quarantined = run(HEADER + GOOD, mapping_error="config/mappings/x.json: mapping file is not valid JSON")
    assert clean.empty and report["file_reason"] == "invalid_mapping" and "not valid JSON" in report["file_detail"]
    assert list(quarantined["_reasons"]) == ["invalid_mapping"]


def test_the_first_record_is_a_row_when_the_file_is_not_text():
    report, _, quarantined = run(b"\x00\x01\x02,\x03\n\x04\x05\n")
    assert report["rows_in"] == 2 and report["file_reason"] == "binary_content" and report["input"]["header"] == []


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda text: text.encode("utf-8"), "utf-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig"),
        (lambda text: text.encode("utf-16"), "utf-16"),
        (lambda text: text.encode("utf-16-le"), "utf-16-le"),
        (lambda text: text.encode("utf-16-be"), "utf-16-be"),
        (lambda text: text.encode("cp1252"), "cp1252"),
        (lambda text: text.encode("latin-1") + b"\x81", "latin-1"),  # 0x81 is undefined in cp1252
    ],
)
def test_encodings_and_bom(encode, encoding):
    text = "date;item_id;quantity;store_id\n2024-01-01;Crème;3;Zürich\n2024-01-02;Crème;4;Zürich\n"
    report, clean, _ = run(encode(text))
    assert report["input"]["encoding"] == encoding and report["input"]["delimiter"] == ";"
    assert list(clean["item_id"]) == ["Crème", "Crème"] and report["rows_clean"] == 2


def test_invalid_utf8_late_in_a_file_quarantines_only_that_row():
    good = "".join(f"2023-{month:02d}-{day:02d},A{n},S1,1,2,0\n" for n in range(150) for month in range(1, 13) for day in (1, 15))
    assert len(good) > decoding.HEAD_BYTES  # the decoder is chosen on the head, which is valid utf-8
    body = (HEADER + good).encode() + b"2024-01-02,B\xff\xfe,S1,1,2,0\n"
    report, clean, quarantined = run(body)
    assert report["input"]["encoding"] == "utf-8"
    assert report["rows_clean"] == 3600 and list(quarantined["_reasons"]) == ["encoding_error"]


def test_gzip_input_is_read_and_fingerprinted_as_stored():
    data = gzip.compress((HEADER + GOOD).encode(), mtime=0)
    report, clean, _ = run(data)
    assert report["input"]["compression"] == "gzip" and len(clean) == 1
    assert report["input"]["bytes"] == len(data)
    assert report["input"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_corrupt_gzip_is_refused_as_a_whole_and_still_fingerprinted():
    data = gzip.compress((HEADER + GOOD * 50).encode(), mtime=0)
    data = data[:40] + bytes(b ^ 0xFF for b in data[40:60]) + data[60:]
    report, clean, quarantined = run(data)
    assert report["file_reason"] == "corrupt_gzip" and report["file_detail"].startswith("the gzip stream is corrupt")
    assert report["input"]["sha256"] == hashlib.sha256(data).hexdigest() and report["input"]["bytes"] == len(data)


def test_truncated_gzip_is_a_file_level_reason_not_a_crash():
    data = gzip.compress(
        (HEADER + GOOD.replace("01-01", "01-0{}") * 1).encode()
        + b"".join(f"2024-02-{day:02d},A,S1,1,2,0\n".encode() for day in range(1, 29))
    )[:-30]
    report, clean, quarantined = run(data)
    assert report["file_reason"] == "truncated_gzip"
    assert report["rows_in"] == report["rows_clean"] == report["rows_quarantined"] == 0


def test_duplicates_are_caught_across_chunks():
    rows = "".join(f"2024-01-{day:02d},A,S1,1,2,0\n" for day in range(1, 11))
    report, clean, quarantined = run(HEADER + rows + "2024-01-02,A,S1,9,2,0\n", chunk_rows=3)
    assert report["rows_clean"] == 10 and list(quarantined["_reasons"]) == ["duplicate_key"]


@pytest.mark.parametrize("seed", [11, 12])
def test_generated_sample_matches_its_ground_truth(seed):
    sample = generate_sales(seed=seed)
    report, clean, quarantined = run(sample.content, chunk_rows=777)
    assert dict(zip(quarantined["_line"], quarantined["_reasons"], strict=True)) == sample.invalid_lines
    assert len(clean) == len(sample.frame)
    assert {rule for rule, _ in INVALID_KINDS} | {"duplicate_key", "field_count"} == set(report["rules"])
    # The clean rows are the generator's valid rows, values and all.
    expected = (
        sample.frame.astype({"quantity": float, "unit_price": float})
        .sort_values(["item_id", "store_id", "date"])
        .reset_index(drop=True)
    )
    got = clean[list(expected.columns)].sort_values(["item_id", "store_id", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=60), max_size=8))
def test_keyset_answers_like_a_python_set(batches):
    keys, seen = validation.KeySet(), set()
    for batch in batches:
        hashes = np.array(batch, dtype=np.uint64)
        expected = np.array([value in seen for value in batch], dtype=bool)
        assert (keys.contains(hashes) == expected).all()
        keys.add(hashes)
        seen.update(batch)
    assert len(keys) == len(seen)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=60), max_size=8))
def test_keyset_take_new_marks_each_keys_first_row_in_the_file(batches):
    keys, seen = validation.KeySet(), set()
    for batch in batches:
        expected = []
        for value in batch:  # new: not in an earlier batch, nor earlier in this one
            expected.append(value not in seen)
            seen.add(value)
        assert keys.take_new(np.array(batch, dtype=np.uint64)).tolist() == expected
    assert len(keys) == len(seen)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", " é", ""]), st.sampled_from(["S1", "S2"]), st.text(max_size=3)), min_size=1))
def test_key_hashes_from_distinct_values_are_pandas_row_hashes(rows):
    """Hashing each distinct text once and mixing the parts gives what hashing every row does."""
    frame = pd.DataFrame(rows, columns=["i", "s", "d"], dtype=object)
    parts = [pd.factorize(frame[column].to_numpy(dtype=object)) for column in frame]
    expected = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    np.testing.assert_array_equal(validation.key_hashes(parts), expected)


def test_delimiter_sniffing_ignores_delimiters_inside_quotes():
    assert decoding.sniff_delimiter('date;item_id;name\n2024-01-01;A;"a, b, c"\n2024-01-02;B;"d, e"\n') == ";"
    assert decoding.sniff_delimiter("date|item_id|quantity\n2024-01-01|A|1\n") == "|"
    assert decoding.sniff_delimiter("date\titem_id\tquantity\n2024-01-01\tA\t1\n") == "\t"


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
        ('{"frequency": "Q"}', "'frequency' must be one of"),
        ('{"colums": {}}', "unknown keys"),
        ('{"dayfirst": "yes"}', "'dayfirst' must be"),
        ('{"decimal": ";"}', "'decimal' must be"),
        ('{"date_format": "dd/mm/yyyy"}', "strftime format"),
        ('{"known_in_advance": ["quantity"]}', "'known_in_advance' must be"),
        ('{"known_in_advance": "unit_price"}', "'known_in_advance' must be"),
        ('{"known_in_advance": ["promotion", "promotion"]}', "'known_in_advance' must be"),
    ],
)
def test_bad_mapping_files_get_clear_errors(text, message):
    with pytest.raises(MappingError, match=message):
        ColumnMapping.from_json(text)


def test_frequency_is_inferred_or_configured():
    assert validation.infer_frequency({"2024-01-01", "2024-01-02", "2024-01-04"}, None) == "D"
    assert validation.infer_frequency({"2024-01-01", "2024-01-08", "2024-01-15"}, None) == "W"
    assert validation.infer_frequency({"2024-01-01", "2024-01-02"}, "W") == "W"


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], "M"),  # first of the month
        (["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"], "M"),  # month ends
        (["2024-01-15", "2024-02-15", "2024-03-15"], "M"),  # any one day of the month
        (["2024-01-03", "2024-01-10", "2024-01-17"], "W"),  # weeks starting on a Wednesday
        (["2024-01-07", "2024-01-14", "2024-01-28"], "W"),  # Sundays, one week missing
        (["2024-01-01", "2024-01-15", "2024-02-01"], "D"),  # neither one weekday nor one day of the month
    ],
)
def test_monthly_and_weekly_are_inferred_from_the_dates(dates, expected):
    assert validation.infer_frequency(dates, None) == expected


def test_known_in_advance_columns_are_read_from_the_mapping():
    mapping = ColumnMapping.from_json('{"known_in_advance": ["promotion", "unit_price"]}')
    assert mapping.known_in_advance == ("promotion", "unit_price")
    assert mapping.describe()["known_in_advance"] == ["promotion", "unit_price"]
    assert ColumnMapping.from_json("{}").known_in_advance == ()


UNITS = ColumnMapping.from_json('{"columns": {"date": "Date", "item_id": "SKU", "quantity": "Units"}}')


@pytest.mark.parametrize(
    ("header", "mapping", "named"),
    [
        ("Date,SKU,Units,Units", UNITS, "quantity = 'Units' (column 3), 'Units' (column 4)"),
        ("Date,SKU,Units, units ", UNITS, "quantity = 'Units' (column 3), 'units' (column 4)"),
        ("Date,SKU,UNITS,units", UNITS, "quantity = 'UNITS' (column 3), 'units' (column 4)"),
        ("date,item_id,quantity,Quantity", None, "quantity = 'quantity' (column 3), 'Quantity' (column 4)"),
        ("date,item_id,quantity,quantity", None, "quantity = 'quantity' (column 3), 'quantity' (column 4)"),
        ("date,item_id,quantity,Note, Note", None, "Note = 'Note' (column 4), 'Note' (column 5)"),
        ("Date,SKU,Units,quantity", UNITS, "quantity = 'Units' (column 3), 'quantity' (column 4)"),
    ],
)
def test_two_columns_with_one_name_quarantine_the_file_and_name_them(header, mapping, named):
    rows = "2024-01-01,A,1,2\n2024-01-02,A,3,4\n2024-01-03,A\n"
    if header.count(",") == 4:
        rows = "2024-01-01,A,1,x,y\n2024-01-02,A,3,x,y\n2024-01-03,A\n"
    report, clean, quarantined = run(f"{header}\n{rows}", mapping)
    assert report["file_reason"] == "duplicate_columns" and named in report["file_detail"]
    assert clean.empty and report["rows_in"] == report["rows_quarantined"] == 3
    assert set(quarantined["_reasons"]) == {"duplicate_columns"}
    assert list(quarantined["_raw"]) == rows.splitlines()  # every row kept as written


def test_columns_that_only_look_alike_are_not_duplicates():
    report, clean, _ = run("date,item_id,quantity,Note,note,,\n2024-01-01,A,1,x,y,,\n", None)
    assert report["file_reason"] is None and len(clean) == 1
    assert list(clean.columns[-4:]) == ["Note", "note", "unnamed_6", "unnamed_7"]


def test_a_mapping_naming_one_column_twice_in_different_case_is_refused():
    with pytest.raises(MappingError, match="one source column for two"):
        ColumnMapping.from_json('{"columns": {"date": "Day", "item_id": " day"}}')
