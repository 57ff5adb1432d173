"""A corpus of realistic exports, each through the three handlers on moto, as a new user's file goes.

Every shape is generated here (small: a few hundred rows at most) from the sample generator's
series, rendered the way real exports come: their own column names with a mapping file, no price
column, a holiday flag as promotion, Latin-1 or UTF-16 text, semicolons and decimal commas,
duplicate column names, ids that a spreadsheet would run as formulas, tiny files.

For each: no exception, every row accounted for (in = clean + quarantined, as many quarantined as
the shape holds), the expected file-level reason where there is one, and then either predictions
for every series or the "not enough history" reason. Ids come from the items' attributes and
output keys from the handlers' results, never built here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pandas as pd
import pytest
from lambda_build.sample_data import generate_sales

from tests.integration.conftest import (
    BUCKET,
    all_items,
    predictions_csv,
    read_csv_gz,
    read_json,
    run_pipeline,
    series_items,
    shard_model_key,
    skipped_reasons,
    validated_rows,
)

HORIZON = 10  # the aws fixture's FORECAST_HORIZON
pytestmark = pytest.mark.usefixtures("single_threaded")


@dataclass
class Export:
    """One generated export and what the pipeline should make of it."""

    content: bytes
    rows: int  # records after the header
    series: set[tuple[str, str]]  # (item_id, store_id) as the API and DynamoDB must show them
    mapping: dict | None = None
    quarantined: int = 0
    file_reason: str | None = None
    predicts: bool = True  # else: the "not enough history" reason (or nothing, after a whole-file quarantine)
    read_as: dict | None = None  # how the report must say the file was read (its "input" fields)


def sales(*, items: int = 2, stores: int = 1, periods: int = 100, frequency: str = "D", seed: int = 0) -> pd.DataFrame:
    """Valid rows of realistic series (canonical column names, values as text)."""
    frame = generate_sales(items=items, stores=stores, periods=periods, frequency=frequency, seed=seed, invalid=False).frame
    return frame.astype(str)


def render(
    frame: pd.DataFrame, *, names: dict | None = None, delimiter: str = ",", encoding: str = "utf-8", decimal: str = "."
) -> bytes:
    """The frame as an export writes it: its own column names, delimiter, decimal mark and encoding."""
    if decimal != ".":
        frame = frame.assign(**{column: frame[column].str.replace(".", decimal) for column in ("unit_price",) if column in frame})
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([(names or {}).get(column, column) for column in frame.columns])
    writer.writerows(frame.itertuples(index=False, name=None))
    return buffer.getvalue().encode(encoding)


def series_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    stores = frame["store_id"] if "store_id" in frame else pd.Series("_", index=frame.index)
    return set(zip(frame["item_id"], stores, strict=True))


def weekly_without_price() -> Export:
    frame = sales(items=2, periods=60, frequency="W").drop(columns=["unit_price"])
    names = {"date": "Week Starting", "item_id": "Product", "store_id": "Branch", "quantity": "Units", "promotion": "Deal"}
    return Export(render(frame, names=names), len(frame), series_of(frame), mapping={"columns": names})


def weekly_short_history() -> Export:
    """30 weeks: the 26- and 52-week lags are never known while backtesting."""
    frame = sales(items=4, periods=30, frequency="W", seed=1)
    return Export(render(frame), len(frame), series_of(frame))


def daily_with_zero_prices() -> Export:
    frame = sales(items=1, stores=2, periods=90, seed=2)
    zero = frame.index % 15 == 7
    frame.loc[zero, "unit_price"] = ["0", "0.00", "0,00"] * (zero.sum() // 3) + ["0"] * (zero.sum() % 3)
    return Export(render(frame), len(frame), series_of(frame), quarantined=int(zero.sum()))  # non_positive_price


def holiday_flag(true: str, false: str) -> Export:
    frame = sales(items=2, periods=100, seed=3)
    frame["promotion"] = frame["promotion"].map({"1": true, "0": false})
    names = {"promotion": "Holiday"}
    return Export(render(frame, names=names), len(frame), series_of(frame), mapping={"columns": names})


def single_store() -> Export:
    frame = sales(items=3, stores=1, periods=100, seed=4)
    return Export(render(frame), len(frame), series_of(frame))


def single_series() -> Export:
    frame = sales(items=1, stores=1, periods=120, seed=5).drop(columns=["store_id"])
    return Export(render(frame), len(frame), series_of(frame))


def renamed_ids(frame: pd.DataFrame, items: dict[str, str], stores: dict[str, str]) -> pd.DataFrame:
    return frame.assign(item_id=frame["item_id"].map(items), store_id=frame["store_id"].map(stores))


def latin1_with_accents() -> Export:
    frame = renamed_ids(
        sales(items=2, periods=40, frequency="W", seed=6),
        {"ITEM-000": "Crème brûlée", "ITEM-001": "Café au lait"},
        {"STORE-00": "Zürich"},
    )
    read_as = {"encoding": "cp1252", "delimiter": ";"}  # Windows-1252: Latin-1's superset for text
    return Export(render(frame, delimiter=";", encoding="latin-1"), len(frame), series_of(frame), read_as=read_as)


def utf16_with_bom() -> Export:
    """Excel's "Unicode text": UTF-16 with a byte order mark, tab-delimited."""
    frame = renamed_ids(
        sales(items=2, periods=40, frequency="W", seed=7), {"ITEM-000": "Größe-L", "ITEM-001": "Øl"}, {"STORE-00": "Ærø"}
    )
    read_as = {"encoding": "utf-16", "delimiter": "\t"}
    return Export(render(frame, delimiter="\t", encoding="utf-16"), len(frame), series_of(frame), read_as=read_as)


def semicolons_with_decimal_commas() -> Export:
    frame = sales(items=3, periods=45, frequency="W", seed=8)
    read_as = {"delimiter": ";", "decimal_comma_values": len(frame)}  # every price
    return Export(render(frame, delimiter=";", decimal=","), len(frame), series_of(frame), read_as=read_as)


def duplicate_column_names() -> Export:
    frame = sales(items=1, periods=40, seed=9)[["date", "item_id", "quantity"]]
    frame = frame.assign(returned="0")
    content = render(frame).replace(b"date,item_id,quantity,returned", b"Date,SKU,Units,Units ")
    mapping = {"columns": {"date": "Date", "item_id": "SKU", "quantity": "Units"}}
    return Export(
        content, len(frame), set(), mapping=mapping, quarantined=len(frame), file_reason="duplicate_columns", predicts=False
    )


FORMULA_ITEMS = {
    "ITEM-000": '=HYPERLINK("http://example.com/x","click")',
    "ITEM-001": "@SUM(1+1)",
    "ITEM-002": "+cmd",
    "ITEM-003": "-2+3",
}
FORMULA_STORES = {"STORE-00": "=1+2"}


def formula_ids() -> Export:
    frame = renamed_ids(sales(items=4, periods=100, seed=10), FORMULA_ITEMS, FORMULA_STORES)
    negative = frame.groupby("item_id").head(1).assign(quantity="-5")  # one quarantined row per id
    frame = pd.concat([frame, negative], ignore_index=True)
    return Export(render(frame), len(frame), series_of(frame.iloc[: -len(negative)]), quarantined=len(negative))


def tiny_file() -> Export:
    content = b"date,item_id,quantity\n2024-01-01,A,1\n2024-01-02,A,2\n2024-01-03,A,3\n"
    return Export(content, 3, {("A", "_")}, predicts=False)


CORPUS = {
    "weekly_without_price": weekly_without_price,
    "weekly_short_history": weekly_short_history,
    "daily_zero_prices": daily_with_zero_prices,
    "holiday_true_false": lambda: holiday_flag("true", "false"),
    "holiday_yes_no": lambda: holiday_flag("Yes", "No"),
    "single_store": single_store,
    "single_series": single_series,
    "latin1": latin1_with_accents,
    "utf16_bom": utf16_with_bom,
    "semicolon_decimal_comma": semicolons_with_decimal_commas,
    "duplicate_columns": duplicate_column_names,
    "formula_ids": formula_ids,
    "tiny": tiny_file,
}


def prediction_items() -> list[dict]:
    return [item for item in all_items() if "prediction" in item]


def upload_and_run(aws, dataset: str, export: Export) -> tuple[dict, dict, dict]:
    if export.mapping is not None:
        aws.put_object(Bucket=BUCKET, Key=f"raw/{dataset}/_mapping.json", Body=json.dumps(export.mapping).encode())
    aws.put_object(Bucket=BUCKET, Key=f"raw/{dataset}/export.csv", Body=export.content)
    return run_pipeline(f"raw/{dataset}/export.csv")


@pytest.mark.parametrize("shape", list(CORPUS))
def test_an_export_runs_end_to_end_and_accounts_for_every_row(aws, shape):
    export = CORPUS[shape]()
    validated, _, predicted = upload_and_run(aws, shape, export)

    rows = validated["rows"]
    assert rows["in"] == export.rows and rows["in"] == rows["clean"] + rows["quarantined"]
    assert rows["quarantined"] == export.quarantined, validated["rules"]
    assert validated["file_reason"] == export.file_reason
    report = read_json(aws, validated["report_key"])
    assert report["rows_in"] == report["rows_clean"] + report["rows_quarantined"] == export.rows
    if export.quarantined:
        assert len(read_csv_gz(aws, validated["quarantine_key"])) == export.quarantined
    for field, value in (export.read_as or {}).items():
        assert report["input"][field] == value, field

    items = prediction_items()
    if export.predicts:
        assert not predicted.get("skipped"), predicted.get("reason")
        assert predicted["predictions_written"] == len(items) == len(export.series) * HORIZON
        assert predicted["items_written"] == len(series_items()) == len(export.series)
        assert {(item["item_id"], item["store_id"]) for item in items} == export.series
        assert len(predictions_csv(aws, predicted)) == len(items)
    else:
        assert items == []
        if export.file_reason:  # refused whole: the state machine stops after validation
            assert validated["skipped"] is True and predicted is None
        else:
            assert predicted["series"] == 0 and "not enough history" in skipped_reasons(aws, predicted)[0]


def test_an_export_without_prices_trains_without_the_price_features(aws):
    upload_and_run(aws, "noprice", weekly_without_price())
    metadata = read_json(aws, shard_model_key(aws, "noprice").replace("model.joblib", "metadata.json"))
    assert "unit_price" not in metadata["features_used"] and "lag_1" in metadata["features_used"]


def test_duplicate_columns_are_named_and_every_row_is_kept(aws):
    export = duplicate_column_names()
    validated, _, _ = upload_and_run(aws, "dupes", export)
    report = read_json(aws, validated["report_key"])
    assert "'Units' (column 3), 'Units' (column 4)" in report["file_detail"]
    quarantined = read_csv_gz(aws, validated["quarantine_key"])
    written = export.content.decode().splitlines()[1:]
    assert list(quarantined["_raw"]) == written and set(quarantined["_reasons"]) == {"duplicate_columns"}


def test_formula_ids_are_escaped_in_csv_files_for_people_and_kept_everywhere_else(aws):
    validated, _, predicted = upload_and_run(aws, "formulas", formula_ids())
    escaped_items = {"'" + item for item in FORMULA_ITEMS.values()}
    escaped_stores = {"'" + store for store in FORMULA_STORES.values()}

    quarantined = read_csv_gz(aws, validated["quarantine_key"])
    assert set(quarantined["item_id"]) == escaped_items and set(quarantined["store_id"]) == escaped_stores
    assert set(quarantined["quantity"]) == {"-5"}  # a number stays a number
    written = predictions_csv(aws, predicted)
    assert set(written["item_id"]) == escaped_items and set(written["store_id"]) == escaped_stores

    items = prediction_items()
    assert {item["item_id"] for item in items} == set(FORMULA_ITEMS.values())
    assert {item["store_id"] for item in items} == set(FORMULA_STORES.values())
    clean, _ = validated_rows(validated["dataset"])  # for machines: the ids as they are
    assert set(clean["item_id"]) == set(FORMULA_ITEMS.values())
