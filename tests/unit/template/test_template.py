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
    """Every statement of every policy document in the translated template (roles, policies, resource policies)."""
    def walk(node, where):
        if isinstance(node, dict):
            if "Statement" in node and isinstance(node["Statement"], list):
                for statement in node["Statement"]:
                    yield where, statement
            for value in node.values():
                yield from walk(value, where)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value, where)

    for name, res in cfn["Resources"].items():
        if res["Type"] != "AWS::StepFunctions::StateMachine":  # ASL definitions hold no IAM statements
            yield from walk(res.get("Properties", {}), name)


def actions_of(statement):
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else action


def test_no_allow_statement_grants_a_wildcard_action(cfn):
    found = list(statements(cfn))
    roles = {name for name, res in cfn["Resources"].items() if res["Type"] == "AWS::IAM::Role"}
    # SAM expanded the policy templates into the roles: the check below has something to check
    assert {name for name, _ in found} >= {"DataValidationFunctionRole", "PredictionsFunctionRole", "PipelineStateMachineRole"}
    assert len(roles) >= 6
    offenders = [
        (where, action) for where, statement in found if statement["Effect"] == "Allow"
        for action in actions_of(statement) if not isinstance(action, str) or action == "*" or action.endswith(":*")
    ]  # fmt: skip
    assert offenders == []
    assert not [where for where, statement in found if "NotAction" in statement]


def test_the_only_wildcard_is_the_bucket_policy_deny_over_plain_http(cfn):
    wildcards = [(where, statement) for where, statement in statements(cfn) if any(a == "*" or a.endswith(":*") for a in actions_of(statement))]
    assert [(where, s["Effect"], s["Condition"]) for where, s in wildcards] == [
        ("DataBucketPolicy", "Deny", {"Bool": {"aws:SecureTransport": "false"}})
    ]


def test_roles_attach_no_broad_managed_policy(cfn):
    allowed = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess"}
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for arn in res["Properties"].get("ManagedPolicyArns", []):
                text = json.dumps(arn)
                assert any(policy in text for policy in allowed), (name, arn)


def test_functions_get_only_the_data_access_they_need(raw):
    policies = {
        name: [next(iter(policy)) for policy in res["Properties"]["Policies"]]
        for name, res in resources_of(raw, "AWS::Serverless::Function").items()
    }  # fmt: skip
    assert policies == {
        "DataValidationFunction": ["S3CrudPolicy"],
        "FeatureEngineeringFunction": ["S3CrudPolicy"],
        "PredictionsFunction": ["S3CrudPolicy", "DynamoDBCrudPolicy"],
        "PredictionsApiFunction": ["DynamoDBReadPolicy"],
    }
    for res in resources_of(raw, "AWS::Serverless::Function").values():
        for policy in res["Properties"]["Policies"]:
            (scope,) = policy.values()
            assert scope in ({"BucketName": {"Ref": "DataBucket"}}, {"TableName": {"Ref": "PredictionsTable"}})


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


def test_state_machines_log_failures_to_their_own_log_groups(raw):
    groups = resources_of(raw, "AWS::Logs::LogGroup")
    machines = resources_of(raw, "AWS::Serverless::StateMachine")
    assert set(machines) == {"PipelineStateMachine", "BackfillStateMachine"}
    for machine in machines.values():
        logging = machine["Properties"]["Logging"]
        assert logging["Level"] in ("ERROR", "ALL")
        (destination,) = logging["Destinations"]
        group = groups[destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        delivery = [s for p in machine["Properties"]["Policies"] if "Statement" in p for s in p["Statement"] if "logs:CreateLogDelivery" in s["Action"]]
        assert len(delivery) == 1


def test_functions_share_thin_code_and_build_with_make(raw):
    assert raw["Globals"]["Function"]["CodeUri"] == "functions/"
    for function in resources_of(raw, "AWS::Serverless::Function").values():
        assert function["Metadata"]["BuildMethod"] == "makefile"
        assert "CodeUri" not in function["Properties"]


TRANSIENT = {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException", "States.Timeout"}


def lambda_tasks(states: dict):
    for name, state in states.items():
        if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke":
            yield name, state
        if "ItemProcessor" in state:
            yield from lambda_tasks(state["ItemProcessor"]["States"])


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
def test_state_machines_retry_transient_errors_with_backoff_and_catch_the_rest(name):
    definition = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / f"{name}.asl.json").read_text())
    states = definition["States"]
    tasks = dict(lambda_tasks(states))
    assert len(tasks) == 3
    for task_name, state in tasks.items():
        (retry,) = state["Retry"]
        assert TRANSIENT <= set(retry["ErrorEquals"]) and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2, task_name
    catchers = [state for state in states.values() if "Catch" in state]
    assert catchers and all(state["Catch"][0]["ErrorEquals"] == ["States.ALL"] for state in catchers)
    targets = {state["Catch"][0]["Next"] for state in catchers}
    assert targets == {"SendToDeadLetterQueue"}
    dlq = states["SendToDeadLetterQueue"]
    assert dlq["Resource"] == "arn:aws:states:::sqs:sendMessage" and dlq["Parameters"]["QueueUrl"] == "${DeadLetterQueueUrl}"
    assert states[dlq["Next"]]["Type"] == "Fail"


def test_pipeline_runs_validate_features_predict_in_order():
    states = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / "pipeline.asl.json").read_text())["States"]
    order, name = [], "Validate"
    while name in states and states[name]["Type"] != "Succeed" and not states[name].get("End"):
        if states[name]["Type"] == "Task":
            order.append(name)
        name = states[name].get("Next") or states[name]["Default"]
    order.append(name)
    assert order == ["Validate", "BuildFeatures", "Predict"]


def test_backfill_is_a_distributed_map_over_an_s3_prefix():
    states = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / "backfill.asl.json").read_text())["States"]
    (mapped,) = [state for state in states.values() if state["Type"] == "Map"]
    assert mapped["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"


def test_state_machine_substitutions_cover_every_placeholder(raw):
    import re

    for logical_id in ("PipelineStateMachine", "BackfillStateMachine"):
        props = raw["Resources"][logical_id]["Properties"]
        text = (template.TEMPLATE_PATH.parent / props["DefinitionUri"]).read_text()
        assert set(re.findall(r"\$\{(\w+)\}", text)) == set(props["DefinitionSubstitutions"]), logical_id


def test_raw_prefix_in_the_event_rule_matches_the_settings(raw):
    from item_prediction.settings import Settings

    rule = raw["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["RawObjectCreated"]["Properties"]["Pattern"]
    assert rule["detail"]["object"]["key"] == [{"prefix": Settings.raw_prefix}]


def _resolve(node, conditions: dict):
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        name, yes, no = node["Fn::If"]
        return _resolve(yes if conditions[name] else no, conditions)
    if isinstance(node, dict):
        return {key: _resolve(value, conditions) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, conditions) for value in node]
    return node


@pytest.mark.parametrize(("api_auth", "security"), [("AWS_IAM", [{"AWS_IAM": []}]), ("NONE", [])])
def test_api_route_auth_follows_the_parameter(cfn, api_auth, security):
    (condition,) = [name for name, value in cfn["Conditions"].items() if value == {"Fn::Equals": [{"Ref": "ApiAuth"}, "AWS_IAM"]}]
    body = _resolve(cfn["Resources"]["PredictionsHttpApi"]["Properties"]["Body"], {condition: api_auth == "AWS_IAM"})
    operation = body["paths"]["/predictions/{item_id}"]["get"]
    assert operation["security"] == security
    assert "PredictionsApiFunction.Arn" in json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_api_is_a_sam_http_api_with_iam_auth_by_default(raw):
    assert raw["Parameters"]["ApiAuth"]["Default"] == "AWS_IAM"
    assert set(raw["Parameters"]["ApiAuth"]["AllowedValues"]) == {"AWS_IAM", "NONE"}
    assert raw["Resources"]["PredictionsHttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    (event,) = raw["Resources"]["PredictionsApiFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "HttpApi" and event["Properties"]["Path"] == "/predictions/{item_id}" and event["Properties"]["Method"] == "GET"


def test_every_function_has_errors_and_throttles_alarms(raw):
    alarms = resources_of(raw, "AWS::CloudWatch::Alarm").values()
    watched = {
        (alarm["Properties"]["MetricName"], alarm["Properties"]["Dimensions"][0]["Value"]["Ref"])
        for alarm in alarms if alarm["Properties"].get("Namespace") == "AWS/Lambda"
    }  # fmt: skip
    functions = set(resources_of(raw, "AWS::Serverless::Function"))
    assert watched == {(metric, name) for metric in ("Errors", "Throttles") for name in functions}
    failed = {alarm["Properties"]["Dimensions"][0]["Value"]["Ref"] for alarm in alarms if alarm["Properties"].get("MetricName") == "ExecutionsFailed"}
    assert failed == {"PipelineStateMachine", "BackfillStateMachine"}


def test_environment_variables_are_the_ones_the_code_reads(raw):
    import re

    settings_source = (template.TEMPLATE_PATH.parent / "functions" / "item_prediction" / "settings.py").read_text()
    read = set(re.findall(r'(?:os\.environ\.get|_int)\("([A-Z_]+)"', settings_source))
    variables = raw["Globals"]["Function"]["Environment"]["Variables"]
    assert {"BUCKET_NAME", "TABLE_NAME", "FORECAST_HORIZON"} <= read
    assert {name for name in variables if not name.startswith("POWERTOOLS_")} <= read
    assert {"BUCKET_NAME", "TABLE_NAME", "FORECAST_HORIZON", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(variables)


def test_function_memory_and_timeouts_are_parameters_within_lambda_limits(raw):
    params = raw["Parameters"]
    for res in resources_of(raw, "AWS::Serverless::Function").values():
        props = res["Properties"]
        memory = params[props["MemorySize"]["Ref"]]
        assert 128 <= memory["Default"] <= 10240 and memory["MinValue"] >= 128 and memory["MaxValue"] <= 10240
        timeout = props["Timeout"]
        if isinstance(timeout, dict):
            timeout = params[timeout["Ref"]]
            assert timeout["MaxValue"] <= 900
            timeout = timeout["Default"]
        assert 1 <= timeout <= 900


def test_handlers_exist_in_the_code(raw):
    import ast

    for name, res in resources_of(raw, "AWS::Serverless::Function").items():
        module, function = res["Properties"]["Handler"].rsplit(".", 1)
        source = template.TEMPLATE_PATH.parent / "functions" / (module.replace(".", "/") + ".py")
        tree = ast.parse(source.read_text())
        assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, name


def test_outputs_name_what_users_and_deploy_need(raw):
    assert {
        "DataBucketName", "PredictionsTableName", "PredictionsApiUrl", "PipelineStateMachineArn", "BackfillStateMachineArn",
        "DataValidationFunctionName", "FeatureEngineeringFunctionName", "PredictionsFunctionName", "PredictionsApiFunctionName",
        "CoreDataScienceLayerArn", "MlLibrariesLayerArn", "AwsUtilitiesLayerArn",
    } <= set(raw["Outputs"])  # fmt: skip


def test_cfn_lint_finds_no_error_or_warning():
    from cfnlint.api import lint_all

    matches = lint_all(template.TEMPLATE_PATH.read_text())
    assert [str(match) for match in matches if match.rule.id[0] in "EW"] == []
    assert not [str(match) for match in matches if match.rule.id == "I3011"], "stateful resources say what happens on delete"
