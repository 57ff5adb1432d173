"""The forecast report through the real pipeline on moto: sliced by each shard's Predict, merged by
the Aggregate step, linked by the API."""

from __future__ import annotations

import json

import requests
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, FakeContext, current, read_json, run_pipeline


def report_link(dataset: str) -> tuple[int, dict]:
    from predictions.api import handler as api

    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    event.update(rawPath=f"/datasets/{dataset}/report", pathParameters={"dataset": dataset}, queryStringParameters=None)
    event["requestContext"]["http"]["path"] = event["rawPath"]
    response = api(event, FakeContext("PredictionsApi"))
    return response["statusCode"], json.loads(response["body"])


def test_the_report_counts_every_upload_and_the_api_links_the_current_one(aws):
    first = generate_sales(items=2, stores=2, periods=200, seed=11)
    second = generate_sales(items=2, stores=2, periods=200, seed=12)
    aws.put_object(Bucket=BUCKET, Key="raw/shop/a.csv", Body=first.content)
    run_pipeline("raw/shop/a.csv")
    earlier = current("shop")["report_key"]
    aws.put_object(Bucket=BUCKET, Key="raw/shop/b.csv", Body=second.content)
    validated, _, predicted = run_pipeline("raw/shop/b.csv")

    assert current("shop")["report_key"] == predicted["report_key"] != earlier
    status, body = report_link("shop")
    assert status == 200 and body["forecast_id"] == predicted["run_id"] and body["expires_in"] == 300
    page = requests.get(body["url"], timeout=5).text  # moto answers the presigned GET
    rows_in = read_json(aws, "reports/shop/a.csv.validation.json")["rows_in"] + read_json(aws, validated["report_key"])["rows_in"]
    assert f"rows in</td><td>{rows_in:,}</td>" in page, "both uploads counted"
    assert "ITEM-000 @ STORE-00" in page and "Whole dataset" in page
    assert report_link("elsewhere")[0] == 404


def test_slices_keep_their_ids_and_dates_and_a_capped_merge_says_so(aws, monkeypatch):
    import boto3
    from item_prediction.aws.settings import Settings
    from item_prediction.aws.storage import Storage
    from item_prediction.steps import report as reporting

    from tests.report_frames import report_frames, summary

    storage, settings = Storage(BUCKET, "unused", s3=boto3.client("s3")), Settings(BUCKET, "unused")
    history, backtest, forecast = report_frames(items=3, stores=1)
    keys = []
    for shard, item in enumerate(["SKU-001", "SKU-002", "SKU-003"]):
        frames = [frame[frame["item_id"] == item].assign(item_id=f"00{shard}") for frame in (history, backtest, forecast)]
        meta = {"shard": shard, "backtested": shard != 2}
        keys.append(reporting.write_slice(storage, reporting.slice_key("d", "r1", shard), *frames, "W", meta))
    data, meta = reporting.read_slice(storage, keys[0])
    assert meta == {"shard": 0, "backtested": True, "frequency": "W"} and list(data["stats"]["item_id"]) == ["000"]
    assert str(data["history"]["date"].dtype).startswith("datetime64") and data["forecast"]["p10"].dtype == float

    aws.delete_object(Bucket=BUCKET, Key=keys[0])  # gone: the page goes on without it
    key = reporting.publish_run_report(storage, settings, {**summary(), "dataset": "d", "forecast_id": "r0"}, keys)
    page = aws.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert "The report slices of 1 shards no longer exist" in page and "1 of 2 shards forecast with their latest model" in page
    assert '"text":"000 @ S1"' not in page and '"text":"001 @ S1"' in page
    reporting.write_slice(
        storage,
        keys[0],
        *[f[f["item_id"] == "SKU-001"].assign(item_id="000") for f in (history, backtest, forecast)],
        "W",
        {"backtested": True},
    )

    monkeypatch.setattr(reporting, "MAX_REPORT_SLICES", 2)
    key = reporting.publish_run_report(storage, settings, {**summary(), "dataset": "d", "forecast_id": "r1"}, keys)
    page = aws.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert key == "reports/d/r1/report.html" and "from the 2 largest of 3 shards" in page
    assert '"text":"000 @ S1"' in page and '"text":"001 @ S1"' in page and "002 @ S1" not in page
