"""Every S3 and DynamoDB call a function makes, in pipeline runs on moto, is one its role in
template.yaml allows. moto does not check IAM, so a read a policy forgot passes every other test
and fails only on AWS (a predict run's report slice read ``validated/`` for a while with no grant).

The calls are recorded with botocore's ``before-parameter-build`` event while a handler runs (the runner's
own service integrations, the state machines', are not counted) and checked against the
function's inline statements: the action a call needs, on the object's or the table's ARN, a
listing's prefix under the statement's ``s3:prefix`` condition."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import boto3
import pytest
from item_prediction.aws import runtime
from lambda_build import template as templatemod
from lambda_build.sample_data import generate_sales

from ..conftest import FakeContext
from . import conftest
from .conftest import BUCKET, TABLE, csv_bytes, run_pipeline

pytestmark = pytest.mark.usefixtures("single_threaded")
S3_ACTIONS = {  # operation -> the action it needs (a version named: the version's action)
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
}
ARNS = {"DataBucket": f"arn:aws:s3:::{BUCKET}", "PredictionsTable": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"}


def needed(service: str, operation: str, params: dict) -> tuple[str, str, str | None]:
    """(action, resource ARN, listing prefix or None) of one call."""
    if service == "dynamodb":
        return f"dynamodb:{operation}", ARNS["PredictionsTable"], None
    assert service == "s3" and operation in S3_ACTIONS, (service, operation, sorted(params))
    action = S3_ACTIONS[operation]
    if params.get("VersionId") and action in ("s3:GetObject", "s3:DeleteObject"):
        action += "Version"
    if action == "s3:ListBucket":
        return action, ARNS["DataBucket"], params.get("Prefix")
    return action, f"{ARNS['DataBucket']}/{params['Key']}", None


def resources(statement: dict) -> list[str]:
    """The statement's resources as ARN patterns (``${DataBucket.Arn}/x/*``, ``!GetAtt X.Arn``)."""
    listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    patterns = []
    for resource in listed:
        if "Fn::GetAtt" in resource:
            patterns.append(ARNS[resource["Fn::GetAtt"][0]])
        else:
            text = resource["Fn::Sub"]
            patterns += [text.replace(f"${{{name}.Arn}}", arn) for name, arn in ARNS.items() if f"${{{name}.Arn}}" in text]
    return patterns


def allows(statement: dict, action: str, arn: str, prefix: str | None) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    if statement["Effect"] != "Allow" or action not in actions or not any(fnmatchcase(arn, p) for p in resources(statement)):
        return False
    condition = (statement.get("Condition") or {}).get("StringLikeIfExists", {}).get("s3:prefix")
    return condition is None or prefix is None or any(fnmatchcase(prefix, pattern) for pattern in condition)


@pytest.fixture
def recorded(aws):
    """``(function, service, operation, params)`` of every call made while a handler runs."""
    calls: list[tuple] = []

    def record(model, params, **_):
        if conftest.RUNNING:
            calls.append((conftest.RUNNING[-1], model.service_model.service_name, model.name, params))

    boto3.DEFAULT_SESSION.events.register("before-parameter-build", record)
    runtime.storage.cache_clear()  # its clients are made after the hook, so they carry it
    yield calls
    boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", record)


def test_every_call_of_a_training_run_a_weekly_run_and_the_api_is_allowed_by_the_functions_role(aws, recorded):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sales = generate_sales(items=3, stores=2, periods=160, seed=8, invalid=False).frame
    days = sorted(sales["date"].unique())
    for name, rows in (("history", sales[sales["date"] < days[-7]]), ("week", sales[sales["date"] >= days[-7]])):
        aws.put_object(Bucket=BUCKET, Key=f"raw/sales/{name}.csv", Body=csv_bytes(rows))
        run_pipeline(f"raw/sales/{name}.csv")
    from predictions.api import handler as api

    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    event.update(rawPath="/datasets/sales/predictions/ITEM-000", pathParameters={"dataset": "sales", "item_id": "ITEM-000"})
    event["queryStringParameters"] = {"store": "STORE-00"}
    conftest.RUNNING.append("PredictionsApiFunction")
    try:
        assert api(event, FakeContext("PredictionsApi"))["statusCode"] == 200
    finally:
        conftest.RUNNING.pop()

    template = templatemod.load_template()
    denied = set()
    for function, service, operation, params in recorded:
        statements = [s for policy in template["Resources"][function]["Properties"]["Policies"] for s in policy["Statement"]]
        action, arn, prefix = needed(service, operation, params)
        if not any(allows(statement, action, arn, prefix) for statement in statements):
            denied.add((function, action, arn.removeprefix(ARNS["DataBucket"]), prefix))
    functions = {call[0] for call in recorded}
    assert functions == {"DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction", "PredictionsApiFunction"}
    assert {call[2] for call in recorded} >= {"GetObject", "PutObject", "ListObjectsV2", "BatchWriteItem", "PutItem", "GetItem"}
    assert not denied, sorted(denied)
