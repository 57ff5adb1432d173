"""A moto bucket and table behind the handlers' storage(), as the template creates them."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest
from item_prediction.aws import runtime
from moto import mock_aws

BUCKET, TABLE = "item-prediction-handlers-test", "item-prediction-handlers-test"


@dataclass
class FakeContext:
    function_name: str = "PredictionsApi"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:PredictionsApi"
    aws_request_id: str = "req-1"


@pytest.fixture
def table(monkeypatch):
    """The handlers' Storage (runtime.storage()) on a moto bucket and table."""
    environment = {
        **{"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        **{"TABLE_NAME": TABLE, "BUCKET_NAME": BUCKET, "POWERTOOLS_SERVICE_NAME": "item-prediction"},
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        )
        yield runtime.storage()
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()
