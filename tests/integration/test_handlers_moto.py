"""The three handlers in sequence against moto (S3 and DynamoDB), as the state machine runs them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from item_prediction import handler_support, records
from item_prediction.sample_data import generate_sales

BUCKET, TABLE = "item-prediction-test", "item-prediction-predictions"


@dataclass
class FakeContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ItemPredictionTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "item-prediction")
    monkeypatch.setenv("FORECAST_HORIZON", "10")
    handler_support.settings.cache_clear()
    handler_support.storage.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        )  # fmt: skip
        yield boto3.client("s3")
    handler_support.settings.cache_clear()
    handler_support.storage.cache_clear()


def object_created(key: str, version: str | None = None) -> dict:
    with open("events/object_created.json") as handle:
        event = json.load(handle)
    event["detail"]["bucket"]["name"] = BUCKET
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["version-id"] = version
    return event


def run_pipeline(key: str) -> tuple[dict, dict, dict]:
    from data_validation.app import lambda_handler as validate
    from feature_engineering.app import lambda_handler as build_features
    from predictions.app import lambda_handler as predict

    validated = validate(object_created(key), FakeContext("DataValidation"))
    featured = build_features(validated, FakeContext("FeatureEngineering"))
    predicted = predict(featured, FakeContext("Predictions"))
    return validated, featured, predicted


def all_items() -> list[dict]:
    table = boto3.resource("dynamodb").Table(TABLE)
    return sorted(table.scan()["Items"], key=lambda item: (item["pk"], item["sk"]))


def test_pipeline_accounts_for_every_row_and_predicts_every_series(aws):
    sample = generate_sales(items=3, stores=2, periods=400, seed=3)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/2024-01.csv", Body=sample.content)
    validated, featured, predicted = run_pipeline("raw/sales/2024-01.csv")

    assert validated["rows"] == {"in": sample.rows, "clean": len(sample.frame), "quarantined": len(sample.invalid_lines)}
    report = json.loads(aws.get_object(Bucket=BUCKET, Key=validated["report_key"])["Body"].read())
    assert report["rows_clean"] + report["rows_quarantined"] == report["rows_in"]
    assert sum(report["rules"].values()) == len(sample.invalid_lines)

    assert featured["series"] == 6 and featured["dataset"] == "sales"
    assert predicted["horizon"] == 10 and predicted["series"] == 6
    assert predicted["metrics"]["beats_baseline"] is True
    items = all_items()
    assert len(items) == 6 * 10 == predicted["predictions_written"]
    by_series: dict[str, list[str]] = {}
    for item in items:
        by_series.setdefault(item["pk"], []).append(item["date"])
    last = sample.frame.groupby(["item_id", "store_id"])["date"].max()
    for (item_id, store_id), last_day in last.items():
        days = by_series[records.series_pk(item_id, store_id)]
        assert len(days) == 10 and min(days) > last_day, (item_id, store_id)
    assert all(item["prediction"] >= Decimal(0) for item in items)

    latest = json.loads(aws.get_object(Bucket=BUCKET, Key="models/sales/latest.json")["Body"].read())
    assert latest["model_key"] == predicted["model_key"]


def test_running_again_leaves_the_same_items(aws):
    sample = generate_sales(items=2, stores=1, periods=120, seed=4)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/file.csv.gz", Body=__import__("gzip").compress(sample.content))
    run_pipeline("raw/sales/file.csv.gz")
    first = all_items()
    run_pipeline("raw/sales/file.csv.gz")
    assert all_items() == first


def test_api_reads_a_date_range_and_rejects_bad_requests(aws):
    from predictions.api import handler as api

    sample = generate_sales(items=1, stores=1, periods=90, seed=5)
    aws.put_object(Bucket=BUCKET, Key="raw/shop/a.csv", Body=sample.content)
    run_pipeline("raw/shop/a.csv")
    days = [item["date"] for item in all_items()]
    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    event["pathParameters"] = {"item_id": "ITEM-000"}
    event["queryStringParameters"] = {"store": "STORE-00", "from": days[2], "to": days[4]}
    response = api(event, FakeContext("PredictionsApi"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert [row["date"] for row in body["predictions"]] == days[2:5]
    event["queryStringParameters"] = {"from": "yesterday"}
    bad = api(event, FakeContext("PredictionsApi"))
    assert bad["statusCode"] == 400 and "'from' must be a date" in json.loads(bad["body"])["message"]


def test_users_columns_are_mapped(aws):
    names = {"date": "Order Date", "item_id": "SKU", "quantity": "Units Sold", "store_id": "Shop", "unit_price": "Price", "promotion": "On Promo"}
    sample = generate_sales(items=2, stores=1, periods=100, seed=6, column_names=names, delimiter=";")
    aws.put_object(Bucket=BUCKET, Key="config/mappings/export.json", Body=sample.mapping_json.encode())
    aws.put_object(Bucket=BUCKET, Key="raw/export/sales.csv", Body=sample.content)
    validated, _, predicted = run_pipeline("raw/export/sales.csv")
    assert validated["rows"]["clean"] == len(sample.frame)
    assert predicted["predictions_written"] == 2 * 10


def test_a_garbage_file_is_quarantined_whole_not_crashed(aws):
    from data_validation.app import lambda_handler as validate

    aws.put_object(Bucket=BUCKET, Key="raw/sales/photo.csv", Body=bytes(range(256)) * 50)
    result = validate(object_created("raw/sales/photo.csv"), FakeContext())
    assert result["file_reason"] == "binary_content"
    assert result["rows"]["clean"] == 0 and result["rows"]["quarantined"] == result["rows"]["in"]


def test_objects_outside_raw_are_skipped_through_every_step(aws):
    from data_validation.app import lambda_handler as validate
    from feature_engineering.app import lambda_handler as build_features
    from predictions.app import lambda_handler as predict

    aws.put_object(Bucket=BUCKET, Key="reports/x.json", Body=b"{}")
    skipped = validate(object_created("reports/x.json"), FakeContext())
    assert skipped["skipped"] is True
    assert build_features(skipped, FakeContext())["skipped"] is True
    assert predict(build_features(skipped, FakeContext()), FakeContext())["skipped"] is True
    assert all_items() == []
