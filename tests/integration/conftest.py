"""Fixtures and helpers shared by the integration tests: the handlers on moto (S3 and DynamoDB).

Lambda sets the Powertools variables before the handler module is imported; so do the tests.
Test modules import the helpers (``from tests.integration.conftest import ...``); the fixtures
(``aws``, ``log_lines``) are found by pytest.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

# Before handler_support is imported: its Powertools objects read these once.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ItemPredictionTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "item-prediction")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from item_prediction import handler_support, records

BUCKET, TABLE = "item-prediction-test", "item-prediction-predictions"


@dataclass
class FakeContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-1"


@pytest.fixture
def aws(monkeypatch):
    """moto's S3 (the bucket) and DynamoDB (the table), with the settings the functions read; yields the S3 client."""
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
    """The three handlers in sequence on an upload of ``key``, as the state machine runs them."""
    from data_validation.app import lambda_handler as validate
    from feature_engineering.app import lambda_handler as build_features
    from predictions.app import lambda_handler as predict

    validated = validate(object_created(key), FakeContext("DataValidation"))
    featured = build_features(validated, FakeContext("FeatureEngineering"))
    predicted = predict(featured, FakeContext("Predictions"))
    return validated, featured, predicted


def all_items() -> list[dict]:
    """Every prediction item in the table, of every run (the CURRENT pointers and other records left out)."""
    table = boto3.resource("dynamodb").Table(TABLE)
    predictions = [item for item in table.scan()["Items"] if item["sk"].startswith("DATE#")]
    return sorted(predictions, key=lambda item: (item["pk"], item["sk"]))


def current(dataset: str) -> dict | None:
    """The dataset's CURRENT pointer (the published forecast run), or None."""
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key=records.current_key(dataset), ConsistentRead=True).get("Item")


def read_json(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def read_csv_gz(s3, key: str):
    import pandas as pd

    return pd.read_csv(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()), compression="gzip", dtype=str, keep_default_na=False)


@pytest.fixture
def log_lines():
    """The Powertools logger's JSON lines (its handler holds the stdout of import time, which
    pytest's capture fixtures do not see; the stdlib's setStream swaps it for the test)."""
    handler = logging.getLogger(handler_support.logger.service).handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.fixture
def single_threaded():
    """Native thread pools (OpenMP, BLAS) of one thread: scikit-learn's gradient boosting on a few
    hundred rows is many times slower with threads competing on a shared machine, and tests
    assert nothing about speed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
