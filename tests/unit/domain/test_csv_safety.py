"""Cells a spreadsheet would run as formulas are escaped in CSV files for people, and only there."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pytest
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import csv_safety

RISKY = ['=HYPERLINK("http://x","click")', "@SUM(A1:A9)", "+cmd", "-2+3", "\tTAB", "\rCR", "-", "=1", "+", "@"]
PLAIN = ["-3", "+1.5", "1e5", "-1e5", "+2E-3", "-2,5", ".5", "-.5", "ITEM-1", "a=b", "", " =1"]


@pytest.mark.parametrize("text", RISKY)
def test_risky_cells_get_a_leading_quote(text):
    assert csv_safety.escape_cells(pd.Series([text], dtype=object)).tolist() == ["'" + text]


@pytest.mark.parametrize("text", PLAIN)
def test_numbers_and_ordinary_text_stay(text):
    assert csv_safety.escape_cells(pd.Series([text], dtype=object)).tolist() == [text]


def test_only_text_columns_change_and_missing_values_stay_missing():
    frame = pd.DataFrame(
        {
            "item_id": pd.Series(["=x", None, "A"], dtype=object),
            "store_id": pd.Series(["@y", pd.NA, "S"], dtype="string"),
            "mixed": pd.Series(["+z", 1, np.nan], dtype=object),
            "number": [-1.0, 2.0, 3.0],
            "date": pd.date_range("2024-01-01", periods=3),
        }
    )
    escaped = csv_safety.escape_formulas(frame)
    assert escaped["item_id"].tolist()[0::2] == ["'=x", "A"] and escaped["item_id"].isna().tolist() == [False, True, False]
    assert escaped["store_id"].tolist()[0::2] == ["'@y", "S"] and escaped["store_id"].isna().tolist() == [False, True, False]
    assert escaped["mixed"].tolist()[:2] == ["'+z", 1]
    pd.testing.assert_series_equal(escaped["number"], frame["number"])
    pd.testing.assert_series_equal(escaped["date"], frame["date"])
    assert frame["item_id"].iloc[0] == "=x"  # the caller's frame is not changed


def test_repeated_column_names_are_escaped_by_position():
    frame = pd.DataFrame([["=a", "=b"]], columns=["x", "x"])
    assert csv_safety.escape_formulas(frame).to_numpy().tolist() == [["'=a", "'=b"]]


def _written(escape: bool, *frames: pd.DataFrame) -> list[list[str]]:
    writer = CsvGzipWriter(escape_formulas=escape)
    for frame in frames:
        writer(frame)
    with writer.finish() as handle:
        return list(csv.reader(io.StringIO(gzip.decompress(handle.read()).decode())))


def test_the_writer_escapes_cells_and_header_of_every_chunk_when_asked():
    first = pd.DataFrame({"item_id": ["=HYPERLINK(1)", "A"], "=cmd": ["x", "-2+3"], "quantity": [-3.0, 1.0]})
    second = pd.DataFrame({"quantity": [2.0], "item_id": ["@SUM(1)"], "=cmd": ["+1.5"]})  # columns in another order
    assert _written(True, first, second) == [
        ["item_id", "'=cmd", "quantity"],
        ["'=HYPERLINK(1)", "x", "-3"],
        ["A", "'-2+3", "1"],
        ["'@SUM(1)", "+1.5", "2"],
    ]
    assert _written(False, first, second)[:2] == [["item_id", "=cmd", "quantity"], ["=HYPERLINK(1)", "x", "-3"]]
