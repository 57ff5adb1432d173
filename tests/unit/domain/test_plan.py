"""Plan files: future prices and promotions under the sales file's mapping, validated row by row."""

from __future__ import annotations

import pandas as pd
import pytest
from item_prediction.domain import plan
from item_prediction.domain.schema import ColumnMapping


def raw(rows, header=("date", "item_id", "store_id", "unit_price", "promotion")):
    return pd.DataFrame(rows, columns=list(header), dtype=object)


def test_a_plan_is_read_under_the_mapping_and_every_row_is_accounted_for():
    mapping = ColumnMapping.from_json('{"columns": {"item_id": "SKU", "unit_price": "Price", "promotion": "Deal"}}')
    frame = raw(
        [
            ["2024-03-01", "A", "S1", "2.50", "yes"],
            ["2024-03-02", "A", "S1", "cheap", "no"],  # invalid price: left out, counted
            ["not a date", "A", "S1", "2.00", "no"],
            ["2024-03-02", "", "S1", "2.00", "no"],
            ["2024-03-02", "B", "", "3.00", "maybe"],
            ["2024-03-03", "B", "NULL", "3.00", "0"],
        ],
        header=("Date", "SKU", "Store_ID", "Price", "Deal"),
    )
    result, report = plan.read_plan(frame, mapping, "D", "D")
    assert report["rows_in"] == 6 and report["rows_used"] == 2
    assert report["rejected"] == {"invalid_price": 1, "invalid_date": 1, "missing_item_id": 1, "invalid_promotion": 1}
    assert report["rows_used"] + sum(report["rejected"].values()) == report["rows_in"]
    assert result.to_dict("records") == [
        {"date": pd.Timestamp("2024-03-01"), "item_id": "A", "store_id": "S1", "unit_price": 2.5, "promotion": 1},
        {"date": pd.Timestamp("2024-03-03"), "item_id": "B", "store_id": "_", "unit_price": 3.0, "promotion": 0},
    ]


def test_weekly_plan_rows_move_to_the_grids_week_and_combine():
    frame = raw([["2024-03-06", "A", "S1", "2.00", "0"], ["2024-03-08", "A", "S1", "3.00", "1"]])
    result, _ = plan.read_plan(frame, ColumnMapping.identity(), "W", "W-MON")
    assert result.to_dict("records") == [
        {"date": pd.Timestamp("2024-03-04"), "item_id": "A", "store_id": "S1", "unit_price": 2.5, "promotion": 1}
    ]


def test_a_plan_may_give_promotions_only_with_decimal_commas_elsewhere():
    frame = raw([["2024-03-01", "A", "1"]], header=("date", "item_id", "promotion"))
    result, report = plan.read_plan(frame, ColumnMapping.identity(), "M", "MS")
    assert report["columns"] == ["promotion"] and "unit_price" not in result
    assert result.iloc[0]["store_id"] == "_"
    priced = raw([["2024-03-01", "A", "1.234,5"]], header=("date", "item_id", "unit_price"))
    result, _ = plan.read_plan(priced, ColumnMapping(decimal=","), "D", "D")
    assert result.iloc[0]["unit_price"] == 1234.5


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (("date", "unit_price"), "missing_columns"),
        (("date", "item_id", "quantity"), "no_planned_columns"),
        (("date", "item_id", "unit_price", "Unit_Price"), "duplicate_columns"),
    ],
)
def test_a_file_that_cannot_be_a_plan_is_refused_with_a_named_reason(header, reason):
    with pytest.raises(plan.PlanError) as refused:
        plan.read_plan(raw([["2024-03-01", *["1"] * (len(header) - 1)]], header=header), ColumnMapping.identity(), "D", "D")
    assert refused.value.reason == reason and str(refused.value)
