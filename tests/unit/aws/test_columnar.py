"""Parquet intermediates: exact round trips of the canonical columns, parts streamed a row group
per chunk, and reading back a row group at a time (locally and from S3 through moto)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from item_prediction.aws import columnar
from item_prediction.aws.storage import Storage

TEXT = ["item_id", "store_id", "date"]


def canonical(start: int, rows: int) -> pd.DataFrame:
    """Validated rows as DataValidation writes them: strings, float64 (prices with gaps), int8."""
    days = range(start, start + rows)
    return pd.DataFrame(
        {
            "item_id": [f"=I{day % 3}" if day % 5 == 0 else f"ü{day % 3}" for day in days],
            "store_id": ["S1" if day % 2 else "_" for day in days],
            "date": [(pd.Timestamp("2024-01-01") + pd.Timedelta(days=day)).strftime("%Y-%m-%d") for day in days],
            "quantity": [day * 0.5 for day in days],
            "unit_price": [np.nan if day % 4 == 0 else 1.25 + day for day in days],
            "promotion": np.array([day % 2 for day in days], dtype="int8"),
        },
        index=[day * 10 for day in days],  # any index: it is not written
    )


def same(back: pd.DataFrame, frame: pd.DataFrame) -> None:
    """Values equal, numeric dtypes exact, text columns strings (fastparquet gives object columns)."""
    for column in TEXT:
        if column in back:
            assert pd.api.types.is_string_dtype(back[column]), (column, back[column].dtype)
    as_objects = dict.fromkeys([column for column in TEXT if column in frame], object)
    pd.testing.assert_frame_equal(back.reset_index(drop=True).astype(as_objects), frame.reset_index(drop=True).astype(as_objects))


def test_round_trip_keeps_values_and_types():
    frame = canonical(0, 9)
    with tempfile.TemporaryFile() as handle:
        columnar.write_frame(frame, handle)
        handle.seek(0)
        assert handle.read(4) == b"PAR1"
        handle.seek(0)
        back = columnar.read_frame(handle)
    same(back, frame)
    assert back.dtypes.to_dict() | dict.fromkeys(TEXT, None) == {
        **dict.fromkeys(TEXT, None),
        "quantity": np.dtype("float64"),
        "unit_price": np.dtype("float64"),
        "promotion": np.dtype("int8"),
    }
    with tempfile.TemporaryFile() as handle:
        columnar.write_frame(frame, handle)
        handle.seek(0)
        assert list(columnar.read_frame(handle, columns=["quantity"]).columns) == ["quantity"]


def test_a_part_gets_one_row_group_per_appended_frame_and_is_read_back_one_at_a_time(tmp_path):
    chunks = [canonical(0, 7), canonical(7, 5), canonical(12, 11)]
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    for chunk in chunks:
        part.append(chunk)
    assert (part.rows, part.row_groups) == (23, 3)
    with open(part.finish(), "rb") as handle:
        groups = list(columnar.iter_row_groups(handle))
    assert [len(group) for group in groups] == [7, 5, 11]
    for group, chunk in zip(groups, chunks, strict=True):
        same(group, chunk)
    with open(part.finish(), "rb") as handle:  # finish() again: the same file, its footer written once
        same(columnar.read_frame(handle), pd.concat(chunks))


def test_many_appends_keep_every_row_in_order_with_its_dtypes(tmp_path):
    """Validation appends a row group per chunk to each shard's part: hundreds of them in one file."""
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    for start in range(0, 600, 3):
        part.append(canonical(start, 3))
    with open(part.finish(), "rb") as handle:
        groups = list(columnar.iter_row_groups(handle))
        handle.seek(0)
        back = columnar.read_frame(handle)
    assert (part.rows, part.row_groups, len(groups)) == (600, 200, 200)
    same(back, canonical(0, 600))
    assert back["promotion"].dtype == np.dtype("int8") and back["unit_price"].dtype == np.dtype("float64")


def test_row_groups_read_only_the_columns_asked_for(tmp_path):
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    part.append(canonical(0, 4))
    part.append(canonical(4, 4))
    with open(part.finish(), "rb") as handle:
        groups = list(columnar.iter_row_groups(handle, columns=["date", "promotion"]))
    assert [list(group.columns) for group in groups] == [["date", "promotion"]] * 2
    same(pd.concat(groups), canonical(0, 8)[["date", "promotion"]])


def test_an_empty_first_frame_writes_a_part_without_rows_and_later_empty_frames_add_nothing(tmp_path):
    part = columnar.PartWriter(str(tmp_path / "empty.parquet"))
    part.append(canonical(0, 0))
    with open(part.finish(), "rb") as handle:
        assert list(columnar.iter_row_groups(handle)) == []
        handle.seek(0)
        empty = columnar.read_frame(handle)
    assert list(empty.columns) == list(canonical(0, 0).columns) and len(empty) == 0
    assert empty["promotion"].dtype == np.dtype("int8")
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    part.append(canonical(0, 3))
    part.append(canonical(3, 0))
    part.append(canonical(3, 2))
    assert (part.rows, part.row_groups) == (5, 2)
    with open(part.finish(), "rb") as handle:
        assert [len(group) for group in columnar.iter_row_groups(handle)] == [3, 2]


def test_a_part_refuses_to_finish_empty_grow_after_finishing_or_change_its_columns(tmp_path):
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    with pytest.raises(ValueError, match="no frame appended"):
        part.finish()
    part.append(canonical(0, 2))
    with pytest.raises(ValueError, match="differ from the part's"):
        part.append(canonical(2, 2).drop(columns=["promotion"]))
    part.finish()
    with pytest.raises(ValueError, match="already finished"):
        part.append(canonical(2, 2))
    with open(part.path, "rb") as handle:  # the refused frames left the file whole
        same(columnar.read_frame(handle), canonical(0, 2))


@pytest.fixture
def storage(moto_aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="parts")
    s3.put_bucket_versioning(Bucket="parts", VersioningConfiguration={"Status": "Enabled"})
    return Storage("parts", "t", s3=s3)


def monthly_part(path, **options) -> str:
    part = columnar.PartWriter(str(path), **options)
    for month in range(1, 6):
        part.append(pd.DataFrame({"date": [f"2024-0{month}-01", f"2024-0{month}-15"], "quantity": [1.0, 2.0]}))
    return part.finish()


def test_a_reader_skips_the_row_groups_whose_date_statistics_are_all_before_the_first_day(tmp_path):
    with open(monthly_part(tmp_path / "p.parquet", stats=("date",)), "rb") as handle:
        groups = [group["date"].tolist() for group in columnar.iter_row_groups(handle, at_least=("date", "2024-03-10"))]
    # March's row group is read whole (its 15th is on/after the day; its 1st is the caller's to drop)
    assert groups == [["2024-03-01", "2024-03-15"], ["2024-04-01", "2024-04-15"], ["2024-05-01", "2024-05-15"]]


def test_a_part_without_date_statistics_is_read_whole(tmp_path):
    with open(monthly_part(tmp_path / "p.parquet"), "rb") as handle:  # text columns get no statistics by default
        assert len(list(columnar.iter_row_groups(handle, at_least=("date", "2024-03-10")))) == 5


def test_storage_streams_a_part_to_s3_and_reads_it_back_a_row_group_at_a_time(storage, tmp_path):
    key = "validated/sales/n=1/shard=00000/a.csv.parquet"
    part = columnar.PartWriter(str(tmp_path / "p.parquet"))
    part.append(canonical(0, 6))
    part.append(canonical(6, 4))
    first = storage.put_part(key, part)  # finishes the part
    assert part.finished and os.path.exists(part.path)  # the caller removes its local file
    assert storage.s3.head_object(Bucket="parts", Key=key)["ContentType"] == columnar.CONTENT_TYPE
    second = storage.put_parquet(key, canonical(100, 3))  # a re-upload overwrites the key
    assert first and second and first != second
    groups = list(storage.iter_parquet(key, version_id=first, columns=["item_id", "quantity"]))
    assert [len(group) for group in groups] == [6, 4]
    same(pd.concat(groups), canonical(0, 10)[["item_id", "quantity"]])
    same(pd.concat(storage.iter_parquet(key)), canonical(100, 3))
    assert [entry["key"] for entry in storage.list_objects("validated/sales/")] == [key]


def test_loading_the_engine_logs_no_warning():
    """fastparquet reads a pandas option pandas 3 deprecated; its warning must not reach the logs."""
    code = "from item_prediction.aws import columnar; columnar.engine()"
    functions = str(Path(columnar.__file__).parents[2])
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": functions}
    )
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr[-2000:]


def test_dictionary_encoded_text_reads_back_as_the_plain_part_gives_it(tmp_path):
    """Validated parts write ids and dates dictionary-encoded: the reader must get the same
    strings (missing ones included), the same row groups skipped by date, and a smaller file."""
    chunks = [canonical(0, 40), canonical(40, 25).assign(store_id=None), canonical(65, 30)]
    chunks[2].loc[chunks[2].index[::3], "store_id"] = None
    files = {}
    for name, dictionary in (("plain", ()), ("dictionary", tuple(TEXT))):
        part = columnar.PartWriter(str(tmp_path / f"{name}.parquet"), stats=("date",), dictionary=dictionary)
        for chunk in chunks:
            part.append(chunk)
        files[name] = part.finish()
    for options in ({}, {"at_least": ("date", "2024-02-20")}, {"columns": ["store_id", "date"]}):
        read = {}
        for name, path in files.items():
            with open(path, "rb") as handle:
                read[name] = [
                    group.astype(object).where(group.notna(), None) for group in columnar.iter_row_groups(handle, **options)
                ]
        assert len(read["dictionary"]) == len(read["plain"]) == (2 if "at_least" in options else 3)
        for encoded, plain in zip(read["dictionary"], read["plain"], strict=True):
            pd.testing.assert_frame_equal(encoded, plain)
    with open(files["dictionary"], "rb") as handle:
        whole = columnar.read_frame(handle)
    expected = pd.concat(chunks, ignore_index=True)

    def texts(frame):
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(texts(whole), texts(expected))
    assert whole["store_id"].isna().sum() == 25 + 10
    for name, path in files.items():  # the pages really are dictionary-encoded (and only where asked)
        with open(path, "rb") as handle:
            chunk = columnar.engine().ParquetFile(handle).row_groups[0].columns
            encoded = {column.meta_data.path_in_schema[0] for column in chunk if column.meta_data.dictionary_page_offset}
        assert encoded == (set(TEXT) if name == "dictionary" else set()), (name, encoded)


@pytest.mark.parametrize("rows", [0, 1, 57])
def test_a_frame_written_with_dictionary_pages_reads_back_as_written_plain(rows):
    """The feature sets are written with their ids dictionary-encoded: the same values and dtypes
    back as from the plain file (empty and one-row frames included)."""
    frame = canonical(0, 57).assign(when=pd.date_range("2024-01-01", periods=57), count=np.arange(57, dtype="int32")).iloc[:rows]
    back = {}
    for dictionary in ((), ("item_id", "store_id")):
        with tempfile.TemporaryFile() as handle:
            columnar.write_frame(frame, handle, dictionary=dictionary)
            handle.seek(0)
            back[dictionary] = columnar.read_frame(handle)
    encoded, plain = back[("item_id", "store_id")], back[()]
    assert encoded.dtypes.drop(TEXT).to_dict() == plain.dtypes.drop(TEXT).to_dict()
    same(encoded, frame)


def test_an_object_column_of_text_with_missing_values_round_trips():
    """The stored prior's price distributions: JSON text in an object column, missing for a series without prices."""
    frame = pd.DataFrame({"prices": pd.Series(["[[1.5, 3]]", None, "[]"], dtype=object), "sum": [1.0, 2.0, 3.0]})
    with tempfile.TemporaryFile() as handle:
        columnar.write_frame(frame, handle)
        handle.seek(0)
        back = columnar.read_frame(handle)
    assert back["prices"].astype(object).where(back["prices"].notna(), None).tolist() == ["[[1.5, 3]]", None, "[]"]
    assert back["sum"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("dictionary", [tuple(TEXT), ()], ids=["dictionary-encoded", "plain"])
def test_text_columns_read_coded_are_categoricals_of_their_dictionary_else_text(tmp_path, dictionary):
    """``coded``: a part's dictionary-encoded text comes as Categoricals (the same values); a part
    written without dictionaries (as before) gives text, never an error."""
    part = columnar.PartWriter(str(tmp_path / "p.parquet"), dictionary=dictionary)
    chunks = [canonical(0, 7), canonical(7, 5)]
    for chunk in chunks:
        part.append(chunk)
    with open(part.finish(), "rb") as handle:
        groups = list(columnar.iter_row_groups(handle, coded=("item_id", "date")))
    for group, chunk in zip(groups, chunks, strict=True):
        kinds = [isinstance(group[name].array, pd.Categorical) for name in TEXT]
        assert kinds == ([True, False, True] if dictionary else [False, False, False])
        assert all(group[name].tolist() == chunk[name].tolist() for name in [*TEXT, "quantity", "promotion"])
