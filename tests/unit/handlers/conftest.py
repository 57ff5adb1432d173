"""A moto bucket and table behind the handlers' storage(), as the template creates them."""

from __future__ import annotations

import functools

import boto3
import pytest
from item_prediction.aws import runtime
from lambda_build.offline.emulator import REGION
from moto import mock_aws

from ...conftest import FakeContext as SharedFakeContext
from ...conftest import create_predictions_table

BUCKET, TABLE = "item-prediction-handlers-test", "item-prediction-handlers-test"


FakeContext = functools.partial(SharedFakeContext, "PredictionsApi", 256)  # the API function's name and memory


@pytest.fixture
def table(monkeypatch):
    """The handlers' Storage (runtime.storage()) on a moto bucket and table."""
    environment = {
        **{"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        **{"TABLE_NAME": TABLE, "BUCKET_NAME": BUCKET, "POWERTOOLS_SERVICE_NAME": "item-prediction"},
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        create_predictions_table(TABLE)
        yield runtime.storage()
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()
