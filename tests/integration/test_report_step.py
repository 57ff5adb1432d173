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
