"""A dataset that grows by one file at a time, through the real pipeline on moto: a predict run
reads only the parts that reach its window (each upload's index records the dates of its rows and
its parts' ETags; the Plan hands them to the shard), and forecasts and reports exactly what
reading every part gives. Without this, every weekly run downloaded every file the dataset ever
had (after a year of weekly files: 54 objects per shard where 7 are needed)."""

from __future__ import annotations

import pandas as pd
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import Storage
from item_prediction.steps import report as reporting
from item_prediction.steps import shard_store
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, TABLE, csv_bytes, read_csv_gz, read_json, run_pipeline

pytestmark = pytest.mark.usefixtures("single_threaded")
SALES = generate_sales(items=3, stores=2, periods=175, seed=7, invalid=False).frame  # 6 series: 6 x 28 + 7 days
SETTINGS = Settings(BUCKET, TABLE)


def files() -> list[pd.DataFrame]:
    """The history as monthly files (28 days), then the last 7 days as a weekly one."""
    days = sorted(SALES["date"].unique())
    bounds = [*range(0, len(days) - 7, 28), len(days) - 7, len(days)]
    return [SALES[SALES["date"].isin(days[start:end])] for start, end in zip(bounds, bounds[1:], strict=False)]


def upload_all(s3, dataset: str):
    """Each file in turn, each its own run; the last run's (FeatureEngineering shard, Predict shard) results."""
    for number, frame in enumerate(files()):
        key = f"raw/{dataset}/file{number:02d}.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(frame))
        run = run_pipeline(key)
    return run.results[("FeatureEngineeringFunction", "shard")], run.results[("PredictionsFunction", "shard")]


def slice_sections(s3, key: str) -> dict:
    return {name: value for name, value in read_json(s3, key).items() if name in reporting.SLICE_SECTIONS}


def test_a_predict_run_reads_only_the_parts_reaching_its_window_and_forecasts_the_same(aws, monkeypatch):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    with monkeypatch.context() as every_part:
        every_part.setattr(shard_store, "skippable", lambda *args: False)
        whole_features, whole = upload_all(aws, "whole")
    features, predicted = upload_all(aws, "weekly")

    uploads = len(files())
    assert features["mode"] == whole_features["mode"] == "predict", (features["reason"], whole_features["reason"])
    assert whole_features["input_count"] == uploads, "without the dates, every upload's part is read"
    assert features["input_count"] < uploads / 2, "the monthly files before the window are not downloaded"
    assert features["rows"] == whole_features["rows"] and features["date_range"] == whole_features["date_range"]
    pd.testing.assert_frame_equal(
        read_csv_gz(aws, predicted["predictions_key"]), read_csv_gz(aws, whole["predictions_key"]), check_exact=True
    )
    assert slice_sections(aws, predicted["report_slice"]) == slice_sections(aws, whole["report_slice"])


def test_an_upload_index_records_its_dates_and_the_etags_of_the_parts_it_wrote(aws):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = files()[0]
    aws.put_object(Bucket=BUCKET, Key="raw/sales/file00.csv", Body=csv_bytes(first))
    run_pipeline("raw/sales/file00.csv")
    storage = Storage(BUCKET, TABLE)
    index = storage.get_json("validated/sales/_parts/file00.csv.json")
    listed = {part.key: part.etag for part in shard_store.list_parts(storage, SETTINGS, "sales")}
    assert index["date_range"] == [first["date"].min(), first["date"].max()]
    assert index["parts"] == listed and listed


PART = shard_store.Part("validated/s/n=1/shard=00000/a.csv.parquet", "a.csv", 1, 0, etag='"e1"')


@pytest.mark.parametrize(
    ("ends", "earliest", "skipped"),
    [
        ({PART.key: ['"e1"', "2024-01-31"]}, ("date", "2024-02-01"), True),  # ends the day before the window
        ({PART.key: ['"e1"', "2024-02-01"]}, ("date", "2024-02-01"), False),  # its last day is in the window
        ({PART.key: ['"e0"', "2024-01-31"]}, ("date", "2024-02-01"), False),  # rewritten since the Plan read its index
        ({}, ("date", "2024-02-01"), False),  # an index written before indexes had dates
        (None, ("date", "2024-02-01"), False),
        ({PART.key: ['"e1"', "2024-01-31"]}, None, False),  # the whole history is read
    ],
)
def test_a_part_goes_unread_only_when_its_recorded_content_ends_before_the_first_day_read(ends, earliest, skipped):
    assert shard_store.skippable(PART, ends, earliest) is skipped


def test_part_ends_trusts_an_index_only_for_the_part_contents_it_wrote():
    indexes = {
        "a.csv": {"date_range": ["2024-01-01", "2024-01-31"], "parts": {"pa": '"e1"', "pb": '"e2"'}},
        "b.csv": {"date_range": None, "parts": {"pc": '"e3"'}},  # no clean dates recorded
        "c.csv": {"rows": {"0": 5}},  # an index from before dates and ETags were recorded
    }
    parts = [
        {"key": "pa", "etag": '"e1"', "source": "a.csv"},
        {"key": "pb", "etag": '"e9"', "source": "a.csv"},  # rewritten after its index
        {"key": "pc", "etag": '"e3"', "source": "b.csv"},
        {"key": "pd", "etag": '"e4"', "source": "c.csv"},
        {"key": "pe", "etag": '"e5"', "source": "d.csv"},  # its index not written yet
    ]
    assert shard_store.part_ends(parts, indexes) == {"pa": ['"e1"', "2024-01-31"]}


def test_part_ends_keeps_the_parts_that_end_first_within_what_a_map_item_holds(monkeypatch):
    """A file a day for years: the map stays within a Step Functions item (the parts ending first,
    the ones a window skips, are kept; the others are read as before)."""
    import json

    days = pd.date_range("2020-01-01", periods=1500).strftime("%Y-%m-%d")
    key = "validated/sales/n=8/shard=00003/daily/{}.csv.parquet"
    parts = [{"key": key.format(day), "etag": f'"{"0" * 32}"', "source": f"daily/{day}.csv"} for day in days]
    indexes = {f"daily/{day}.csv": {"date_range": [day, day], "parts": {key.format(day): f'"{"0" * 32}"'}} for day in days}
    ends = shard_store.part_ends(parts, indexes)
    assert len(ends) == shard_store.MAX_PART_ENDS and len(json.dumps(ends)) < 64 * 1024
    assert sorted(end for _, end in ends.values()) == list(days[: shard_store.MAX_PART_ENDS])
    monkeypatch.setattr(shard_store, "MAX_PART_ENDS", 2000)
    assert len(shard_store.part_ends(parts, indexes)) == 1500
