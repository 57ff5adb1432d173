"""Assertions on template.yaml, before and after SAM's own translation to CloudFormation."""

from __future__ import annotations

import copy
import json

import pytest

from lambda_build import config, template

EXPECTED_LAYERS = {  # this mapping is the claim: each function mounts exactly these, in this order
    "DataValidationFunction": ("core-data-science", "aws-utilities"),
    "FeatureEngineeringFunction": ("core-data-science", "aws-utilities"),
    "PredictionsFunction": ("core-data-science", "ml-libraries", "aws-utilities"),
    "PredictionsApiFunction": ("core-data-science", "aws-utilities"),
}


@pytest.fixture(scope="module")
def raw():
    return template.load_template()


@pytest.fixture(scope="module")
def cfn(raw):
    """The template as CloudFormation sees it, after samtranslator expands the SAM resources."""
    import os

    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    class NoManagedPolicies:
        def load(self):
            return {}

    document = copy.deepcopy(raw)
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        if "ContentUri" in props:
            props["ContentUri"] = "s3://artifacts/layer.zip"
        if "DefinitionUri" in props:
            props["DefinitionUri"] = {"Bucket": "artifacts", "Key": "definition.json"}
    document["Globals"]["Function"]["CodeUri"] = "s3://artifacts/code.zip"
    return transform(document, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}, NoManagedPolicies())


def resources_of(document, kind):
    return {name: res for name, res in document["Resources"].items() if res["Type"] == kind}


def test_each_function_mounts_exactly_its_layers():
    specs = {spec.logical_id: spec.layers for spec in template.functions(config.load())}
    assert specs == EXPECTED_LAYERS


def test_runtime_and_layer_compatibility_come_from_layers_toml(raw):
    cfg = config.load()
    assert raw["Globals"]["Function"]["Runtime"] == cfg.runtime
    for layer in resources_of(raw, "AWS::Serverless::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == [cfg.runtime]
    assert raw["Parameters"]["Architecture"]["Default"] == cfg.default_architecture
    assert set(raw["Parameters"]["Architecture"]["AllowedValues"]) == set(cfg.architectures)


def statements(cfn):
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement


def test_no_allow_statement_grants_a_wildcard_action(cfn):
    found = list(statements(cfn))
    assert len(found) > 5  # the translation produced the roles' policies: the check below has something to check
    offenders = [
        (role, action) for role, statement in found if statement["Effect"] == "Allow"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action == "*" or action.endswith(":*")
    ]  # fmt: skip
    assert offenders == []


def test_bucket_is_encrypted_private_versioned_and_tls_only(raw):
    bucket = raw["Resources"]["DataBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    policy = raw["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = [s for s in policy if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"]
    assert len(tls) == 1 and tls[0]["Principal"] == "*"


def test_table_is_on_demand_recoverable_and_encrypted(raw):
    table = raw["Resources"]["PredictionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]


def test_every_function_has_a_log_group_with_retention(raw):
    groups = resources_of(raw, "AWS::Logs::LogGroup")
    for name, function in resources_of(raw, "AWS::Serverless::Function").items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        function_name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert groups[group]["Properties"]["LogGroupName"]["Fn::Sub"] == f"/aws/lambda/{function_name}"


def test_functions_share_thin_code_and_build_with_make(raw):
    assert raw["Globals"]["Function"]["CodeUri"] == "functions/"
    for function in resources_of(raw, "AWS::Serverless::Function").values():
        assert function["Metadata"]["BuildMethod"] == "makefile"
        assert "CodeUri" not in function["Properties"]


def test_state_machine_retries_transient_errors_and_catches_the_rest():
    definition = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / "pipeline.asl.json").read_text())
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task" and "lambda" in state["Resource"]}
    assert list(tasks) == ["Validate", "BuildFeatures", "Predict"]
    for state in tasks.values():
        assert "Lambda.TooManyRequestsException" in state["Retry"][0]["ErrorEquals"] and state["Retry"][0]["BackoffRate"] > 1
        assert state["Catch"][0]["Next"] == "SendToDeadLetterQueue"


def test_raw_prefix_in_the_event_rule_matches_the_settings(raw):
    from item_prediction.settings import Settings

    rule = raw["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["RawObjectCreated"]["Properties"]["Pattern"]
    assert rule["detail"]["object"]["key"] == [{"prefix": Settings.raw_prefix}]


def test_api_uses_iam_auth_by_default(raw):
    assert raw["Parameters"]["ApiAuth"]["Default"] == "AWS_IAM"
    assert set(raw["Parameters"]["ApiAuth"]["AllowedValues"]) == {"AWS_IAM", "NONE"}
    route = raw["Resources"]["GetPredictionsRoute"]["Properties"]
    assert route["RouteKey"] == "GET /predictions/{item_id}" and route["AuthorizationType"] == {"Ref": "ApiAuth"}
