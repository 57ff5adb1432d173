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
    return transform(
        document, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}, NoManagedPolicies()
    )


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
        (where, action)
        for where, statement in found
        if statement["Effect"] == "Allow"
        for action in actions_of(statement)
        if not isinstance(action, str) or action == "*" or action.endswith(":*")
    ]
    assert offenders == []
    assert not [where for where, statement in found if "NotAction" in statement]


def test_the_only_wildcard_is_the_bucket_policy_deny_over_plain_http(cfn):
    wildcards = [
        (where, statement)
        for where, statement in statements(cfn)
        if any(a == "*" or a.endswith(":*") for a in actions_of(statement))
    ]
    assert [(where, s["Effect"], s["Condition"]) for where, s in wildcards] == [
        ("DataBucketPolicy", "Deny", {"Bool": {"aws:SecureTransport": "false"}})
    ]


def test_roles_attach_no_broad_managed_policy(cfn):
    allowed = {"AWSLambdaBasicExecutionRole"}
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for arn in res["Properties"].get("ManagedPolicyArns", []):
                text = json.dumps(arn)
                assert any(policy in text for policy in allowed), (name, arn)


def test_nothing_is_traced_with_x_ray_and_no_role_may_write_traces(raw, cfn):
    """No handler creates a Tracer and the aws-utilities layer ships no aws-xray-sdk, so active
    tracing would only bill empty segments: step durations come from the structured logs and
    metrics. Neither the functions nor the state machines trace, and no role gets X-Ray rights."""
    traced = [name for name, res in raw["Resources"].items() if "Tracing" in res.get("Properties", {})]
    assert "Tracing" not in raw["Globals"]["Function"] and traced == []
    assert [name for name, res in cfn["Resources"].items() if "TracingConfig" in res.get("Properties", {})] == []
    xray = [
        (where, action)
        for where, statement in statements(cfn)
        for action in actions_of(statement)
        if str(action).startswith("xray:")
    ]
    managed = [arn for res in cfn["Resources"].values() for arn in res.get("Properties", {}).get("ManagedPolicyArns", [])]
    assert xray == [] and not [arn for arn in managed if "xray" in json.dumps(arn).lower()]


# The access model, by prefix: what each function may read (GetObject), read by version and write
# (PutObject or DeleteObject). The claim of issue 10.7: only Predictions writes models/, and
# DataValidation, which parses untrusted files, writes neither models/ nor features/.
EXPECTED_S3 = {
    "DataValidationFunction": {
        "read": {"raw/", "config/mappings/", "validated/", "quarantine/", "reports/"},
        "versions": {"raw/", "config/mappings/"},
        "write": {"validated/", "quarantine/", "reports/"},
        "list": {"raw/*", "config/mappings/*", "validated/*", "quarantine/*", "reports/*"},
    },
    "FeatureEngineeringFunction": {
        "read": {"validated/", "models/*/latest.json", "features/", "runs/"},
        "versions": {"validated/", "models/*/latest.json"},
        "write": {"features/", "runs/"},
        "list": {"validated/*", "features/*", "models/*", "runs/*"},
    },
    "PredictionsFunction": {
        "read": {
            "features/",
            "models/",
            "runs/",
            "predictions/",
            "reports/",
            "validated/",  # a predict run's report slice reads the shard's validated parts
            "runs/*/report/",  # (also in runs/, with the statement that lets it write its slices there)
            "validated/*/_dataset.json",
            "raw/*/plan/",  # plan files and their mapping: read, never listed beyond the plan folders
            "raw/*/_mapping.json",
            "config/mappings/",
        },
        "versions": {"features/", "models/", "runs/"},
        "write": {"models/", "predictions/", "reports/", "validated/*/_dataset.json", "runs/*/report/"},
        "list": {"features/*", "models/*", "predictions/*", "reports/*", "runs/*", "raw/*/plan/*", "validated/*"},
    },
    "PredictionsApiFunction": {"read": {"reports/"}, "versions": set(), "write": set(), "list": {"reports/*"}},  # report links
}
EXPECTED_DYNAMODB = {
    "DataValidationFunction": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    "FeatureEngineeringFunction": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem"},
    "PredictionsFunction": {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"},
    "PredictionsApiFunction": {"dynamodb:GetItem", "dynamodb:Query"},
    "PipelineStateMachine": {"dynamodb:DeleteItem"},
    "BackfillStateMachine": {"dynamodb:DeleteItem"},
}


def inline_statements(raw, logical_id):
    """The statements of a SAM resource's Policies; only inline statements (no policy templates)."""
    policies = raw["Resources"][logical_id]["Properties"]["Policies"]
    return [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]


def object_prefixes(resources) -> list[str]:
    """``${DataBucket.Arn}/raw/*`` -> ``raw/``; a named object under any folder of a prefix stays a
    pattern (``${DataBucket.Arn}/models/*/latest.json`` -> ``models/*/latest.json``), as do the
    datasets' plan folders (``raw/*/plan/*`` -> ``raw/*/plan/``) and the runs' report folders; anything else
    on the bucket's objects fails the test."""
    resources = resources if isinstance(resources, list) else [resources]
    prefixes = []
    for resource in resources:
        text = resource["Fn::Sub"]
        assert text.startswith("${DataBucket.Arn}/") and (text.count("*") == 1 or text.endswith(("/plan/*", "/report/*"))), text
        assert text.endswith("/*") or "/*/" in text and "*" not in text.rsplit("/", 1)[1], text
        prefixes.append(text.removeprefix("${DataBucket.Arn}/").removesuffix("*"))
    return prefixes


def s3_access(raw, logical_id) -> dict:
    access = {"read": set(), "versions": set(), "write": set(), "list": set()}
    for statement in inline_statements(raw, logical_id):
        actions = set(actions_of(statement))
        if actions == {"s3:ListBucket"}:
            assert statement["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}
            ((operator, condition),) = statement["Condition"].items()
            assert operator in ("StringLike", "StringLikeIfExists") and set(condition) == {"s3:prefix"}
            access["list"] |= set(condition["s3:prefix"])
            continue
        s3 = {action for action in actions if action.startswith("s3:")}
        if not s3:
            continue
        prefixes = set(object_prefixes(statement["Resource"]))
        for kind, granted in (("read", "s3:GetObject"), ("versions", "s3:GetObjectVersion")):
            if granted in s3:
                access[kind] |= prefixes
        if s3 & {"s3:PutObject", "s3:DeleteObject"}:
            access["write"] |= prefixes
    return access


def test_functions_use_only_inline_statements_scoped_to_the_bucket_and_table(raw):
    for name in EXPECTED_S3:
        policies = raw["Resources"][name]["Properties"]["Policies"]
        assert policies and all(set(policy) == {"Statement"} for policy in policies), name
        for statement in inline_statements(raw, name):
            assert statement["Effect"] == "Allow"
            text = json.dumps(statement["Resource"])
            assert "DataBucket" in text or "PredictionsTable" in text, (name, statement["Sid"])


@pytest.mark.parametrize("name", sorted(EXPECTED_S3))
def test_each_function_reaches_only_its_prefixes(raw, name):
    assert s3_access(raw, name) == EXPECTED_S3[name]


def test_only_predictions_writes_models_and_validation_writes_neither_models_nor_features(raw):
    writers = {name: s3_access(raw, name)["write"] for name in EXPECTED_S3}
    assert [name for name, prefixes in writers.items() if "models/" in prefixes] == ["PredictionsFunction"]
    assert not writers["DataValidationFunction"] & {"models/", "features/", "predictions/"}


@pytest.mark.parametrize("name", sorted(EXPECTED_DYNAMODB))
def test_dynamodb_actions_are_the_ones_used(raw, name):
    granted = set()
    for statement in inline_statements(raw, name):
        actions = {action for action in actions_of(statement) if action.startswith("dynamodb:")}
        if actions:
            assert statement["Resource"] == {"Fn::GetAtt": ["PredictionsTable", "Arn"]}
            granted |= actions
    assert granted == EXPECTED_DYNAMODB[name]


def test_no_role_can_scan_the_table_or_use_crud_policy_templates(cfn, raw):
    assert not [where for where, statement in statements(cfn) if any("Scan" in action for action in actions_of(statement))]
    text = json.dumps(
        {
            name: res["Properties"].get("Policies")
            for name, res in raw["Resources"].items()
            if "Policies" in res.get("Properties", {})
        }
    )
    assert "CrudPolicy" not in text and "S3ReadPolicy" not in text and "DynamoDBReadPolicy" not in text


@pytest.mark.parametrize("machine", ["PipelineStateMachine", "BackfillStateMachine"])
def test_state_machines_invoke_exactly_the_three_pipeline_functions(raw, cfn, machine):
    assert "LambdaInvokePolicy" not in json.dumps(raw["Resources"][machine]["Properties"]["Policies"])
    invoke = [s for s in inline_statements(raw, machine) if "lambda:InvokeFunction" in actions_of(s)]
    (statement,) = invoke
    assert statement["Resource"] == [
        {"Fn::GetAtt": [name, "Arn"]} for name in ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction")
    ]
    role = json.dumps(cfn["Resources"][f"{machine}Role"])
    assert "PredictionsApiFunction" not in role and "function:" not in role  # no name patterns that could match the API


def test_bucket_is_encrypted_private_versioned_and_tls_only(raw):
    bucket = raw["Resources"]["DataBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    policy = raw["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = [s for s in policy if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"]
    assert len(tls) == 1 and tls[0]["Principal"] == "*"


@pytest.mark.parametrize(("environment", "protected"), [("dev", False), ("staging", True), ("prod", True)])
def test_table_expires_items_by_ttl_and_is_protected_outside_dev(raw, environment, protected):
    table = raw["Resources"]["PredictionsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    condition = table["DeletionProtectionEnabled"]["Fn::If"][0]
    assert _condition(raw, condition, {"Environment": environment}) is protected
    assert _resolve(table["DeletionProtectionEnabled"], {condition: protected}) is protected
    assert set(raw["Parameters"]["Environment"]["AllowedValues"]) == {"dev", "staging", "prod"}


def _condition(raw, name, parameters: dict) -> bool:
    """Evaluate a template condition made of Fn::Not / Fn::Equals on parameters (defaults when not given)."""

    def value(node):
        if isinstance(node, dict) and "Ref" in node:
            return str(parameters.get(node["Ref"], raw["Parameters"][node["Ref"]].get("Default")))
        return str(node)

    def evaluate(node):
        ((function, args),) = node.items()
        if function == "Fn::Not":
            return not evaluate(args[0])
        if function == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if function == "Condition":
            return evaluate(raw["Conditions"][args])
        raise AssertionError(f"unexpected {function}")

    return evaluate(raw["Conditions"][name])


def test_table_is_on_demand_recoverable_and_encrypted(raw):
    table = raw["Resources"]["PredictionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]


def test_every_function_has_a_log_group_with_retention(raw):
    groups = resources_of(raw, "AWS::Logs::LogGroup")
    for function in resources_of(raw, "AWS::Serverless::Function").values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        function_name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert groups[group]["Properties"]["LogGroupName"]["Fn::Sub"] == f"/aws/lambda/{function_name}"


def test_state_machines_log_failures_to_their_own_log_groups(raw):
    """`sam logs --stack-name` finds a state machine's log group from its logging configuration (the
    name is the 7th field of the group's ARN, which GetAtt .Arn gives)."""
    groups = resources_of(raw, "AWS::Logs::LogGroup")
    machines = resources_of(raw, "AWS::Serverless::StateMachine")
    assert set(machines) == {"PipelineStateMachine", "BackfillStateMachine"}
    for machine in machines.values():
        logging = machine["Properties"]["Logging"]
        assert logging["Level"] in ("ERROR", "ALL") and logging["IncludeExecutionData"] is False
        (destination,) = logging["Destinations"]
        group_arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
        assert group_arn["Fn::GetAtt"][1] == "Arn"
        group = groups[group_arn["Fn::GetAtt"][0]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert (
            group["Properties"]["LogGroupName"]["Fn::Sub"] == "/aws/vendedlogs/states/" + machine["Properties"]["Name"]["Fn::Sub"]
        )
        delivery = [
            s
            for p in machine["Properties"]["Policies"]
            if "Statement" in p
            for s in p["Statement"]
            if "logs:CreateLogDelivery" in s["Action"]
        ]
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


def definition_of(name: str) -> dict:
    return json.loads((template.TEMPLATE_PATH.parent / "statemachine" / f"{name}.asl.json").read_text())


def all_states(states: dict):
    for name, state in states.items():
        yield name, state
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"]["States"])


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
def test_state_machines_retry_transient_errors_with_backoff_and_catch_the_rest(name):
    states = definition_of(name)["States"]
    tasks = dict(lambda_tasks(states))
    assert set(tasks) == {"Validate", "Plan", "BuildFeatures", "Predict", "Aggregate"}
    for task_name, state in tasks.items():
        retry = state["Retry"][0]
        assert TRANSIENT <= set(retry["ErrorEquals"]) and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2, task_name
    catchers = [state for name, state in states.items() if "Catch" in state and name != "ReleaseLease"]  # the steps of the run
    assert len(catchers) == 4 and all(
        state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "HoldsLease"}] for state in catchers
    )
    dlq = states["SendToDeadLetterQueue"]
    assert dlq["Resource"] == "arn:aws:states:::sqs:sendMessage" and dlq["Parameters"]["QueueUrl"] == "${DeadLetterQueueUrl}"
    assert states[dlq["Next"]]["Type"] == "Fail"


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
def test_every_task_times_out_a_little_after_its_function(raw, name):
    longest = max(raw["Parameters"][p]["MaxValue"] for p in ("ValidationTimeout", "FeaturesTimeout", "PredictionsTimeout"))
    tasks = [(state_name, state) for state_name, state in all_states(definition_of(name)["States"]) if state["Type"] == "Task"]
    assert len(tasks) == 7  # Validate, Plan, BuildFeatures, Predict, Aggregate, ReleaseLease, SendToDeadLetterQueue
    for state_name, state in tasks:
        if state["Resource"].endswith(":lambda:invoke"):  # the function's own timeout first, then the state's
            assert longest < state["TimeoutSeconds"] <= longest + 120, state_name
        else:
            assert 0 < state["TimeoutSeconds"] <= 60, state_name


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
@pytest.mark.parametrize("state", ["Plan", "Aggregate"])  # Aggregate takes the run's lease again (a retry)
def test_a_busy_dataset_is_waited_for(name, state):
    build = definition_of(name)["States"][state]
    busy = [retry for retry in build["Retry"] if retry["ErrorEquals"] == ["DatasetBusy"]]
    assert busy == [
        {
            "ErrorEquals": ["DatasetBusy"],
            "IntervalSeconds": 15,
            "MaxAttempts": 12,
            "BackoffRate": 1.5,
            "MaxDelaySeconds": 120,
            "JitterStrategy": "FULL",
        }
    ]
    assert not [retry for retry in build["Retry"] if "States.ALL" in retry["ErrorEquals"]]


@pytest.mark.parametrize(("name", "owner_path"), [("pipeline", "$"), ("backfill", "$")])
def test_a_failure_releases_the_lease_it_holds_then_reaches_the_dead_letter_queue(name, owner_path):
    states = definition_of(name)["States"]
    holds = states["HoldsLease"]
    assert holds["Type"] == "Choice" and holds["Default"] == "SendToDeadLetterQueue"
    assert holds["Choices"] == [{"Variable": f"{owner_path}.lease_owner", "IsPresent": True, "Next": "ReleaseLease"}]
    release = states["ReleaseLease"]
    assert release["Resource"] == "arn:aws:states:::dynamodb:deleteItem"
    params = release["Parameters"]
    assert params["TableName"] == "${PredictionsTableName}"
    assert params["Key"] == {"pk": {"S.$": f"States.Format('DS#{{}}', {owner_path}.dataset)"}, "sk": {"S": "LEASE"}}
    assert params["ConditionExpression"] == "#o = :o" and params["ExpressionAttributeNames"] == {"#o": "owner"}
    assert params["ExpressionAttributeValues"] == {":o": {"S.$": f"{owner_path}.lease_owner"}}
    assert release["ResultPath"] is None and release["Next"] == "SendToDeadLetterQueue"  # the error being handled is kept
    caught = [c["ErrorEquals"] for c in release["Catch"] if c["Next"] == "SendToDeadLetterQueue" and c["ResultPath"] != "$.error"]
    assert caught == [["DynamoDB.ConditionalCheckFailedException"], ["States.ALL"]] and len(release["Catch"]) == 2
    assert states["SendToDeadLetterQueue"]["Retry"][0]["MaxAttempts"] >= 3


def test_only_states_after_the_plan_see_a_lease_owner():
    """In the pipeline, Validate's input is the upload event (no lease); the map and Aggregate see the Plan's output."""
    states = definition_of("pipeline")["States"]
    assert states["Plan"]["OutputPath"] == "$.Payload" and states["Plan"]["Next"] == "AnythingChanged"
    assert states["AnythingChanged"]["Default"] == "Shards" and states["Shards"]["ResultPath"] == "$.shards"
    merge = 'States.JsonMerge($, States.StringToJson(\'{"step": "aggregate"}\'), false)'
    assert states["Aggregate"]["Parameters"]["Payload.$"] == merge


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
def test_shards_run_in_a_distributed_map_read_from_the_plans_list_with_results_in_s3(raw, name):
    mapped = definition_of(name)["States"]["Shards"]
    assert mapped["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "${DataBucketName}", "Key.$": "$.shards_key"},
    }
    # STANDARD children: a shard's tasks may run 900 s each, past an Express execution's 5 minutes.
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["ItemProcessor"]["StartAt"] == "BuildFeatures"
    inner = mapped["ItemProcessor"]["States"]
    assert inner["BuildFeatures"]["Next"] == "Predict" and inner["Predict"]["End"] is True
    assert mapped["MaxConcurrencyPath"] == "$.shard_concurrency" and mapped["ToleratedFailurePercentage"] == 0
    assert mapped["ResultWriter"]["Parameters"] == {"Bucket": "${DataBucketName}", "Prefix.$": "$.results_prefix"}
    machine = "PipelineStateMachine" if name == "pipeline" else "BackfillStateMachine"
    props = raw["Resources"][machine]["Properties"]
    assert props["DefinitionSubstitutions"]["ShardConcurrency"] == {"Ref": "ShardConcurrency"}
    assert raw["Parameters"]["ShardConcurrency"]["MaxValue"] == 10000
    readers = [s for s in inline_statements(raw, machine) if "runs/" in json.dumps(s["Resource"])]
    assert [object_prefixes(s["Resource"]) for s in readers] == [["runs/"]]
    children = [s for s in inline_statements(raw, machine) if "states:StartExecution" in actions_of(s)]
    assert len(children) == 1 and f"-{name}" in json.dumps(children[0]["Resource"])


def test_backfill_writes_its_results_and_tolerates_no_failed_file_by_default(raw):
    states = definition_of("backfill")["States"]
    mapped = states["ValidateEveryFile"]
    assert mapped["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "${DataBucketName}", "Prefix": "results/backfill/"},
    }
    assert (
        "ToleratedFailurePercentage" not in mapped
        and mapped["ToleratedFailurePercentagePath"] == "$.tolerated_failure_percentage"
    )
    assert mapped["ResultPath"] == "$.files"  # the manifest of succeeded and failed files is in the output
    settings = states[definition_of("backfill")["StartAt"]]
    assert settings["Next"] == "ValidateEveryFile"
    assert settings["Parameters"]["tolerated_failure_percentage.$"] == "States.StringToJson('${ToleratedFailurePercentage}')"
    props = raw["Resources"]["BackfillStateMachine"]["Properties"]
    assert props["DefinitionSubstitutions"]["ToleratedFailurePercentage"] == {"Ref": "BackfillToleratedFailurePercentage"}
    assert raw["Parameters"]["BackfillToleratedFailurePercentage"]["Default"] == 0
    writer = [s for s in inline_statements(raw, "BackfillStateMachine") if "s3:PutObject" in actions_of(s)]
    assert [object_prefixes(s["Resource"]) for s in writer] == [["results/backfill/"], ["runs/"]]  # files, then shards


def test_pipeline_runs_validate_features_predict_in_order():
    states = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / "pipeline.asl.json").read_text())["States"]
    order, name = [], "Validate"
    while name in states and states[name]["Type"] != "Succeed" and not states[name].get("End"):
        if states[name]["Type"] in ("Task", "Map"):
            order.append(name)
        name = states[name].get("Next") or states[name]["Default"]
    order.append(name)
    assert order == ["Validate", "Plan", "Shards", "Aggregate"]


def test_backfill_is_a_distributed_map_over_an_s3_prefix():
    states = json.loads((template.TEMPLATE_PATH.parent / "statemachine" / "backfill.asl.json").read_text())["States"]
    mapped = states["ValidateEveryFile"]
    assert mapped["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"


def test_state_machine_substitutions_cover_every_placeholder(raw):
    import re

    for logical_id in ("PipelineStateMachine", "BackfillStateMachine"):
        props = raw["Resources"][logical_id]["Properties"]
        text = (template.TEMPLATE_PATH.parent / props["DefinitionUri"]).read_text()
        assert set(re.findall(r"\$\{(\w+)\}", text)) == set(props["DefinitionSubstitutions"]), logical_id


def test_raw_prefix_in_the_event_rule_matches_the_settings(raw):
    from item_prediction.aws.settings import Settings

    rule = raw["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["RawObjectChanged"]["Properties"]["Pattern"]
    assert rule["detail"]["object"]["key"] == [{"prefix": Settings.raw_prefix}]


def test_uploads_and_user_deletes_start_the_pipeline_and_undelivered_events_are_kept(raw, cfn):
    event = raw["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["RawObjectChanged"]["Properties"]
    assert event["Pattern"]["detail-type"] == ["Object Created", "Object Deleted"]
    assert event["Pattern"]["detail"]["reason"] == [{"anything-but": "Lifecycle Expiration"}]  # retention retracts nothing
    (rule,) = resources_of(cfn, "AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1 and target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert rule["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-raw-objects"}
    (policy,) = resources_of(raw, "AWS::SQS::QueuePolicy").values()
    assert policy["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":rule/" + rule["Properties"]["Name"]["Fn::Sub"])  # only this stack's rule may send


@pytest.mark.parametrize(
    ("detail_type", "key", "reason", "starts"),
    [
        ("Object Created", "raw/sales/jan.csv", "PutObject", True),
        ("Object Created", "raw/sales/jan.csv", "CompleteMultipartUpload", True),
        ("Object Deleted", "raw/sales/jan.csv", "DeleteObject", True),
        ("Object Deleted", "raw/sales/jan.csv", "Lifecycle Expiration", False),  # retention must not retract rows
        ("Object Created", "validated/sales/jan.csv.csv.gz", "PutObject", False),
        ("Object Restore Completed", "raw/sales/jan.csv", "PutObject", False),
    ],
)
def test_the_event_rule_matches_uploads_and_user_deletes_only(raw, detail_type, key, reason, starts):
    from moto.events.models import EventPattern

    pattern = copy.deepcopy(
        raw["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["RawObjectChanged"]["Properties"]["Pattern"]
    )
    pattern["detail"]["bucket"]["name"] = ["data-bucket"]  # the Ref, resolved
    with open(template.TEMPLATE_PATH.parent / "events" / "object_created.json") as handle:
        event = json.load(handle)
    event["detail-type"] = detail_type
    event["detail"].update(bucket={"name": "data-bucket"}, reason=reason)
    event["detail"]["object"]["key"] = key
    assert EventPattern.load(json.dumps(pattern)).matches_event(event) is starts


def test_the_alarm_topic_key_lets_cloudwatch_publish(raw):
    topic = raw["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = raw["Resources"]["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements_ = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements_ if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Effect"] == "Allow" and set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (admin,) = [s for s in statements_ if "AWS" in s["Principal"]]
    assert "kms:ScheduleKeyDeletion" in admin["Action"] and "kms:PutKeyPolicy" not in admin["Action"]  # kms:Put* covers it


def test_whole_file_quarantines_are_metered():
    assert 'name="FilesQuarantined"' in (template.TEMPLATE_PATH.parent / "functions/data_validation/app.py").read_text()


@pytest.mark.parametrize("metric", ["FilesQuarantined", "RejectedUploads"])
def test_upload_metrics_have_alarms(raw, metric):
    variables = raw["Globals"]["Function"]["Environment"]["Variables"]
    (alarm,) = [
        a["Properties"] for a in resources_of(raw, "AWS::CloudWatch::Alarm").values() if a["Properties"]["MetricName"] == metric
    ]
    assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]  # where Powertools puts the EMF metric
    assert alarm["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    assert (
        alarm["Threshold"] == 1
        and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        and alarm["TreatMissingData"] == "notBreaching"
    )


@pytest.mark.parametrize(
    ("prefix", "parameter", "days"),
    [("raw/", "RawRetentionDays", 30), ("quarantine/", "QuarantineRetentionDays", 90), ("reports/", "ReportsRetentionDays", 400)],
)
def test_retention_expires_each_prefix_after_its_days_and_zero_keeps(raw, prefix, parameter, days):
    rules = raw["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (abort,) = [rule for rule in rules if "AbortIncompleteMultipartUpload" in rule]
    assert (
        abort["Status"] == "Enabled"
        and abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        and "Prefix" not in abort
    )
    (choice,) = [rule["Fn::If"] for rule in rules if "Fn::If" in rule and rule["Fn::If"][1]["Prefix"] == prefix]
    condition, rule, otherwise = choice
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert _condition(raw, condition, {parameter: days}) is True and _condition(raw, condition, {parameter: 0}) is False
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": parameter}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": parameter}}
    assert raw["Parameters"][parameter]["MinValue"] == 0 and raw["Parameters"][parameter]["Type"] == "Number"


def test_functions_that_spill_to_tmp_have_room_for_it(raw):
    sizes = {
        name: res["Properties"].get("EphemeralStorage", {}).get("Size", 512)
        for name, res in resources_of(raw, "AWS::Serverless::Function").items()
    }
    assert sizes["DataValidationFunction"] == sizes["FeatureEngineeringFunction"] == 2048


def test_upload_budgets_are_parameters_passed_to_the_functions(raw):
    from item_prediction.domain.decoding import Budget

    variables = raw["Globals"]["Function"]["Environment"]["Variables"]
    for field, parameter in (
        ("max_object_bytes", "MaxObjectBytes"),
        ("max_stream_bytes", "MaxStreamBytes"),
        ("max_record_bytes", "MaxRecordBytes"),
        ("max_columns", "MaxColumns"),
    ):
        assert variables[field.upper()] == {"Ref": parameter}
        assert raw["Parameters"][parameter]["Default"] == getattr(Budget(), field)  # one default, said twice on purpose


ROUTE = "/datasets/{dataset}/predictions/{item_id}"
REPORT_ROUTE = "/datasets/{dataset}/report"


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
    assert list(body["paths"]) == [ROUTE, REPORT_ROUTE]  # the old /predictions/{item_id} cannot say which dataset: gone
    for route in (ROUTE, REPORT_ROUTE):
        operation = body["paths"][route]["get"]
        assert operation["security"] == security
        assert "PredictionsApiFunction.Arn" in json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_api_is_a_sam_http_api_with_iam_auth_by_default(raw):
    assert raw["Parameters"]["ApiAuth"]["Default"] == "AWS_IAM"
    assert set(raw["Parameters"]["ApiAuth"]["AllowedValues"]) == {"AWS_IAM", "NONE"}
    assert raw["Resources"]["PredictionsHttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    events = raw["Resources"]["PredictionsApiFunction"]["Properties"]["Events"].values()
    assert [event["Properties"]["Path"] for event in events] == [ROUTE, REPORT_ROUTE]
    assert all(event["Type"] == "HttpApi" and event["Properties"]["Method"] == "GET" for event in events)


def test_every_function_has_errors_and_throttles_alarms(raw):
    alarms = resources_of(raw, "AWS::CloudWatch::Alarm").values()
    watched = {
        (alarm["Properties"]["MetricName"], alarm["Properties"]["Dimensions"][0]["Value"]["Ref"])
        for alarm in alarms
        if alarm["Properties"].get("Namespace") == "AWS/Lambda"
    }
    functions = set(resources_of(raw, "AWS::Serverless::Function"))
    assert watched == {(metric, name) for metric in ("Errors", "Throttles") for name in functions}
    failed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms
        if alarm["Properties"].get("MetricName") == "ExecutionsFailed"
    }
    assert failed == {"PipelineStateMachine", "BackfillStateMachine"}


def test_environment_variables_are_the_ones_the_code_reads(raw):
    import re

    settings_source = (template.TEMPLATE_PATH.parent / "functions" / "item_prediction" / "aws" / "settings.py").read_text()
    read = set(re.findall(r'(?:os\.environ\.get|_int)\("([A-Z_]+)"', settings_source))
    variables = raw["Globals"]["Function"]["Environment"]["Variables"]
    assert {"BUCKET_NAME", "TABLE_NAME", "FORECAST_HORIZON"} <= read
    assert {name for name in variables if not name.startswith("POWERTOOLS_")} <= read
    assert {
        "BUCKET_NAME",
        "TABLE_NAME",
        "FORECAST_HORIZON",
        "RETRAIN_EVERY_DAYS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    } <= set(variables)


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
        "DataBucketName",
        "PredictionsTableName",
        "PredictionsApiUrl",
        "PipelineStateMachineArn",
        "BackfillStateMachineArn",
        "DataValidationFunctionName",
        "FeatureEngineeringFunctionName",
        "PredictionsFunctionName",
        "PredictionsApiFunctionName",
        "CoreDataScienceLayerArn",
        "MlLibrariesLayerArn",
        "AwsUtilitiesLayerArn",
    } <= set(raw["Outputs"])


def test_cfn_lint_finds_no_error_or_warning():
    from cfnlint.api import lint_all

    matches = lint_all(template.TEMPLATE_PATH.read_text())
    assert [str(match) for match in matches if match.rule.id[0] in "EW"] == []
    assert not [str(match) for match in matches if match.rule.id == "I3011"], "stateful resources say what happens on delete"
