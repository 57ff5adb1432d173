"""The offline Step Functions runner, by named cases in the spirit of Step Functions Local's
MockConfigFile (HappyPath, RetryPath, ...): each case scripts what every function returns or
throws on its n-th call, runs a definition and checks the path taken, the data and the waits."""

from __future__ import annotations

import copy
import json
import threading

import pytest
from lambda_build.offline.asl import ExecutionFailed, TaskFailed, UnsupportedDefinition, retry_delay, run, validate
from lambda_build.offline.emulator import arn
from lambda_build.offline.mapstate import workers

from ...conftest import REPO_ROOT

LAMBDA = "arn:aws:states:::lambda:invoke"
SQS = "arn:aws:states:::sqs:sendMessage"
TRANSIENT = ["Lambda.ServiceException", "Lambda.TooManyRequestsException", "States.Timeout"]


def task(function: str, nxt: str | None = "End", **extra) -> dict:
    state = {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }
    return {**state, **({"End": True} if nxt == "End" else {"Next": nxt})}


# The pipeline's shape: validate, choose, two more steps; retries, then the dead-letter queue.
PIPELINE = {
    "StartAt": "Validate",
    "States": {
        "Validate": task(
            "validate",
            "AnythingToPredict",
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DeadLetter"}],
        ),
        "AnythingToPredict": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.skipped", "IsPresent": True, "Next": "NothingToDo"}],
            "Default": "Features",
        },
        "Features": task(
            "features",
            "Predict",
            Retry=[{"ErrorEquals": TRANSIENT, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DeadLetter"}],
        ),
        "Predict": task("predict", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DeadLetter"}]),
        "NothingToDo": {"Type": "Succeed"},
        "DeadLetter": {
            "Type": "Task",
            "Resource": SQS,
            "Parameters": {"QueueUrl": "dlq", "MessageBody.$": "$"},
            "Next": "PipelineFailed",
        },
        "PipelineFailed": {"Type": "Fail", "Error": "PipelineFailed", "Cause": "see the dead-letter queue"},
    },
}


class Case:
    """A named test case: per function, what its calls return (a value) or throw (a TaskFailed)."""

    def __init__(self, **responses) -> None:
        self.responses = {name: list(values) if isinstance(values, list) else [values] for name, values in responses.items()}
        self.calls: list[tuple[str, object]] = []
        self.sent: list[dict] = []
        self.waits: list[float] = []
        self.lock = threading.Lock()

    def invoke(self, function: str, payload):
        with self.lock:
            self.calls.append((function, payload))
            response = self.responses[function].pop(0) if len(self.responses[function]) > 1 else self.responses[function][0]
        if isinstance(response, TaskFailed):
            raise response
        return response(payload) if callable(response) else response

    def run(self, definition=PIPELINE, data=None, **kwargs):
        services = {SQS: lambda params: self.sent.append(params) or {"MessageId": "m-1"}, **kwargs.pop("services", {})}
        return run(
            definition,
            data if data is not None else {"key": "raw/a.csv"},
            invoke=self.invoke,
            services=services,
            sleep=self.waits.append,
            **kwargs,
        )

    @property
    def order(self) -> list[str]:
        return [function for function, _ in self.calls]


def test_happy_path():
    case = Case(
        validate=lambda event: {**event, "rows": 3},
        features=lambda event: {**event, "series": 2},
        predict=lambda event: {"written": event["series"] * 7},
    )
    assert case.run() == {"written": 14}
    assert case.order == ["validate", "features", "predict"] and case.calls[0][1] == {"key": "raw/a.csv"}
    assert case.sent == [] and case.waits == []


def test_choice_skip():
    case = Case(validate={"skipped": True, "reason": "not under raw/"})
    assert case.run() == {"skipped": True, "reason": "not under raw/"}
    assert case.order == ["validate"]


def test_retry_then_succeed_waits_with_backoff():
    busy = TaskFailed("Lambda.TooManyRequestsException", "rate exceeded")
    case = Case(validate={"rows": 1}, features=[busy, busy, {"series": 1}], predict={"written": 7})
    assert case.run() == {"written": 7}
    assert case.order == ["validate", "features", "features", "features", "predict"]
    assert case.waits == [2.0, 4.0]  # IntervalSeconds 2, BackoffRate 2


def test_retries_exhausted_catch_to_dead_letter_queue_then_fail():
    states = []
    busy = TaskFailed("Lambda.ServiceException", "internal error")
    case = Case(validate={"rows": 1}, features=busy, predict={"written": 7})
    with pytest.raises(ExecutionFailed) as failed:
        case.run(on_state=states.append)
    assert (failed.value.error, failed.value.cause, failed.value.state) == (
        "PipelineFailed",
        "see the dead-letter queue",
        "PipelineFailed",
    )
    assert failed.value.caught == {"state": "Features", "error": "Lambda.ServiceException", "cause": "internal error"}
    assert case.order == ["validate"] + ["features"] * 4 and case.waits == [2.0, 4.0, 8.0]
    assert case.sent == [
        {"QueueUrl": "dlq", "MessageBody": {"rows": 1, "error": {"Error": "Lambda.ServiceException", "Cause": "internal error"}}}
    ]
    assert [e["state"] for e in states if e["event"] == "StateEntered"] == [
        "Validate",
        "AnythingToPredict",
        "Features",
        "DeadLetter",
        "PipelineFailed",
    ]


def test_an_error_no_retrier_names_goes_straight_to_the_catch():
    case = Case(validate={"rows": 1}, features=TaskFailed("ValueError", "bad horizon"))
    with pytest.raises(ExecutionFailed):
        case.run()
    assert case.order == ["validate", "features"] and case.waits == []


def test_timeout_fails_the_task_with_states_timeout():
    release = threading.Event()
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": task("slow", TimeoutSeconds=1, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Late"}]),
            "Late": {"Type": "Pass", "End": True},
        },
    }
    case = Case(slow=lambda event: release.wait(30) and {"done": True})
    try:
        output = case.run(definition)
    finally:
        release.set()
    assert output["Error"] == "States.Timeout" and "TimeoutSeconds 1" in output["Cause"]


def test_states_task_failed_matches_anything_but_a_timeout():
    rule = [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]
    definition = {"StartAt": "T", "States": {"T": task("f", Catch=rule), "Caught": {"Type": "Pass", "End": True}}}
    assert Case(f=TaskFailed("ValueError", "x")).run(definition)["Error"] == "ValueError"
    with pytest.raises(ExecutionFailed) as failed:
        Case(f=TaskFailed("States.Timeout", "slow")).run(definition)
    assert (failed.value.error, failed.value.state) == ("States.Timeout", "T")


def test_max_attempts_zero_never_retries_and_max_delay_and_jitter_bound_the_wait():
    definition = {
        "StartAt": "T",
        "States": {
            "T": task("f", Retry=[{"ErrorEquals": ["A"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}])
        },
    }
    case = Case(f=[TaskFailed("A", ""), {"ok": 1}])
    with pytest.raises(ExecutionFailed):
        case.run(definition)
    assert case.waits == [] and len(case.calls) == 1, "the first matching retrier decides, even with 0 attempts"
    busy = {"IntervalSeconds": 15, "BackoffRate": 1.5, "MaxAttempts": 12, "MaxDelaySeconds": 120}
    assert [retry_delay(busy, n) for n in (0, 1, 5, 6, 11)] == [15, 22.5, 113.90625, 120, 120]
    assert retry_delay({**busy, "JitterStrategy": "FULL"}, 6, random=lambda: 0.25) == 30.0
    assert retry_delay({**busy, "JitterStrategy": "NONE"}, 6, random=lambda: 0.25) == 120


def test_full_jitter_draws_from_the_injected_random():
    definition = {
        "StartAt": "T",
        "States": {
            "T": task("f", Retry=[{"ErrorEquals": ["A"], "IntervalSeconds": 10, "MaxAttempts": 2, "JitterStrategy": "FULL"}])
        },
    }
    case = Case(f=[TaskFailed("A", ""), TaskFailed("A", ""), {"ok": 1}])
    draws = iter([0.5, 0.1])
    assert case.run(definition, random=lambda: next(draws)) == {"ok": 1}
    assert case.waits == [5.0, 2.0]


def test_paths_parameters_selectors_and_context():
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "InputPath": "$.order",
                "Parameters": {
                    "FunctionName": "f",
                    "Payload": {
                        "id.$": "$.id",
                        "nested": {"run.$": "$$.Execution.Name", "state.$": "$$.State.Name"},
                        "input.$": "$$.Execution.Input",
                        "fixed": [1, 2],
                    },
                },
                "ResultSelector": {"total.$": "$.Payload.total"},
                "ResultPath": "$.result",
                "OutputPath": "$.result",
                "End": True,
            }
        },
    }
    case = Case(f=lambda payload: {"total": 42, "echo": payload})
    data = {"order": {"id": "o-1"}, "other": True}
    assert case.run(definition, data, execution_name="run-7") == {"total": 42}
    assert case.calls[0][1] == {"id": "o-1", "nested": {"run": "run-7", "state": "T"}, "input": data, "fixed": [1, 2]}


def test_result_path_null_keeps_the_input_and_pass_places_its_result():
    definition = {
        "StartAt": "T",
        "States": {
            "T": {**task("f", "P"), "ResultPath": None, "OutputPath": "$"},
            "P": {"Type": "Pass", "Result": {"v": 1}, "ResultPath": "$.pass", "End": True},
        },
    }
    assert Case(f={"ignored": True}).run(definition, {"a": 1}) == {"a": 1, "pass": {"v": 1}}


def test_a_path_that_matches_nothing_fails_the_run_uncatchably():
    definition = {
        "StartAt": "T",
        "States": {
            "T": {**task("f", "C"), "InputPath": "$.missing", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
            "C": {"Type": "Succeed"},
        },
    }
    with pytest.raises(ExecutionFailed) as failed:
        Case(f={}).run(definition, {"a": 1})
    assert failed.value.error == "States.Runtime" and failed.value.state == "T" and "$.missing" in failed.value.cause


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ({"Variable": "$.x", "IsNull": True}, {"x": None}, "Yes"),
        ({"Variable": "$.x", "StringEquals": "a"}, {"x": "a"}, "Yes"),
        ({"Variable": "$.x", "BooleanEquals": False}, {"x": False}, "Yes"),
        ({"Variable": "$.x", "NumericGreaterThanEquals": 3}, {"x": 3}, "Yes"),
        ({"Variable": "$.x", "NumericLessThan": 3}, {"x": "2"}, "No"),  # a string is not a number
        (
            {"And": [{"Variable": "$.x", "NumericGreaterThan": 1}, {"Not": {"Variable": "$.y", "IsPresent": True}}]},
            {"x": 2},
            "Yes",
        ),
        ({"Or": [{"Variable": "$.x", "NumericEquals": 1}, {"Variable": "$.x", "NumericLessThanEquals": 0}]}, {"x": 5}, "No"),
    ],
)
def test_choice_comparisons(rule, data, expected):
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "Yes", "End": True},
            "No": {"Type": "Pass", "Result": "No", "End": True},
        },
    }
    assert Case().run(definition, data) == expected


def test_no_choice_matched_fails_the_execution():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D"}]},
            "D": {"Type": "Succeed"},
        },
    }
    with pytest.raises(ExecutionFailed) as failed:
        Case().run(definition, {})
    assert (failed.value.error, failed.value.state) == ("States.NoChoiceMatched", "C")


class FakeS3:
    """ItemReader and ResultWriter's S3, recording the objects written."""

    def __init__(self, objects: dict[str, str]) -> None:
        self.objects = dict(objects)

    def services(self) -> dict:
        return {
            "arn:aws:states:::s3:getObject": lambda p: self.objects[f"{p['Bucket']}/{p['Key']}"],
            "arn:aws:states:::s3:listObjectsV2": lambda p: [
                {"Key": k.split("/", 1)[1], "Size": len(v)}
                for k, v in sorted(self.objects.items())
                if k.startswith(f"{p['Bucket']}/{p['Prefix']}")
            ],
            "arn:aws:states:::s3:putObject": lambda p: (
                self.objects.__setitem__(f"{p['Bucket']}/{p['Key']}", p["Body"]) or {"ETag": "x"}
            ),
        }


def distributed_map(**extra) -> dict:
    return {
        "StartAt": "Shards",
        "States": {
            "Shards": {
                "Type": "Map",
                "ProcessorConfig": None,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket": "b", "Key.$": "$.manifest"},
                },
                "ItemSelector": {"shard.$": "$$.Map.Item.Value.shard", "index.$": "$$.Map.Item.Index", "dataset.$": "$.dataset"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Predict",
                    "States": {
                        "Predict": task(
                            "predict", Retry=[{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1}]
                        )
                    },
                },
                "MaxConcurrency": 2,
                **extra,
                "End": True,
            }
        },
    }


def without_none(definition: dict) -> dict:
    definition["States"]["Shards"].pop("ProcessorConfig")
    return definition


def test_map_reads_items_from_s3_runs_them_bounded_and_writes_results():
    s3 = FakeS3({"b/manifests/shards.csv": "shard,rows\ns0,10\ns1,20\ns2,30\ns3,40\ns4,50\n"})
    running, peak, lock = [0], [0], threading.Lock()
    both_running = threading.Barrier(2, timeout=10)

    def predict(event):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if event["index"] < 2:
            both_running.wait()  # the first two items run at the same time
        with lock:
            running[0] -= 1
        return {"shard": event["shard"], "written": 7}

    definition = without_none(
        distributed_map(
            ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "results"}}
        )
    )
    case = Case(predict=predict)
    summary = case.run(definition, {"manifest": "manifests/shards.csv", "dataset": "shop"}, services=s3.services())
    assert peak[0] == 2, "MaxConcurrency 2: two at a time, never more"
    assert sorted(payload["shard"] for _, payload in case.calls) == ["s0", "s1", "s2", "s3", "s4"]
    assert all(payload["dataset"] == "shop" for _, payload in case.calls)
    manifest = json.loads(s3.objects[f"b/{summary['ResultWriterDetails']['Key']}"])
    assert summary["ResultWriterDetails"]["Key"].startswith("results/") and manifest["ResultFiles"]["FAILED"] == []
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    entries = json.loads(s3.objects[f"b/{succeeded['Key']}"])
    assert [json.loads(e["Output"]) for e in entries] == [{"shard": f"s{i}", "written": 7} for i in range(5)]


def test_map_without_writer_returns_outputs_in_order_and_tolerates_failures():
    s3 = FakeS3({"b/m.csv": "shard\ns0\ns1\ns2\ns3\n"})

    def predict(event):
        if event["shard"] == "s2":
            raise TaskFailed("ValueError", "bad shard")
        return event["shard"]

    tolerant = without_none(distributed_map(ToleratedFailurePercentage=25))
    output = Case(predict=predict).run(tolerant, {"manifest": "m.csv", "dataset": "d"}, services=s3.services())
    assert output == ["s0", "s1", {"Error": "ValueError", "Cause": "bad shard"}, "s3"]
    strict = without_none(distributed_map(ToleratedFailureCount=0))
    with pytest.raises(ExecutionFailed) as failed:
        Case(predict=predict).run(strict, {"manifest": "m.csv", "dataset": "d"}, services=s3.services())
    assert (
        failed.value.error == "States.ExceedToleratedFailureThreshold"
        and failed.value.state == "Shards"
        and "1 of 4" in failed.value.cause
    )


def test_inline_map_over_items_path_and_json_lines_reader():
    inline = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "F", "States": {"F": task("f")}},
                "ResultPath": "$.out",
                "End": True,
            }
        },
    }
    assert Case(f=lambda x: x * 2).run(inline, {"items": [1, 2, 3]}) == {"items": [1, 2, 3], "out": [2, 4, 6]}
    definition = without_none(distributed_map())
    definition["States"]["Shards"]["ItemReader"]["ReaderConfig"] = {"InputType": "JSONL"}
    s3 = FakeS3({"b/m.jsonl": '{"shard": "a"}\n{"shard": "b"}\n'})
    assert Case(predict=lambda e: e["shard"]).run(
        definition, {"manifest": "m.jsonl", "dataset": "d"}, services=s3.services()
    ) == ["a", "b"]


def test_max_concurrency_zero_means_the_cpu_count(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert workers({"MaxConcurrency": 0}, 100) == 6 and workers({}, 100) == 6
    assert workers({"MaxConcurrency": 3}, 100) == 3 and workers({"MaxConcurrency": 0}, 2) == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda d: d["States"]["Validate"].update(HeartbeatSeconds=60),
            "state Validate: field HeartbeatSeconds is not supported",
        ),
        (lambda d: d["States"].update(Wait={"Type": "Wait", "Seconds": 1}), "state Wait: Type 'Wait' is not supported"),
        (
            lambda d: d["States"]["Validate"].update(Resource="arn:aws:states:::glue:startJobRun.sync"),
            "state Validate: Resource 'arn:aws:states:::glue:startJobRun.sync' is not supported",
        ),
        (
            lambda d: d["States"]["AnythingToPredict"]["Choices"][0].update(StringMatches="a*"),
            "state AnythingToPredict: Choices[0]: field StringMatches is not supported",
        ),
        (
            lambda d: d["States"]["Features"]["Retry"][0].update(JitterStrategy="EQUAL"),
            "state Features: Retry[0]: JitterStrategy 'EQUAL' is not supported",
        ),
        (
            lambda d: d["States"]["Features"]["Parameters"].update({"Payload.$": "States.Hash($, 'SHA-256')"}),
            "state Features: Parameters.Payload.$: States.Hash is not supported",
        ),
        (lambda d: d["States"]["Predict"].update(OutputPath="$.items[*]"), "state Predict: OutputPath '$.items[*]'"),
        (lambda d: d["States"]["Features"].update(Next="Nowhere"), "state Features: Next 'Nowhere' is not a state"),
        (
            lambda d: d["States"]["PipelineFailed"].update(ErrorPath="$.e"),
            "state PipelineFailed: field ErrorPath is not supported",
        ),
        (lambda d: d.update(QueryLanguage="JSONata"), "definition: field QueryLanguage is not supported"),
    ],
)
def test_unsupported_definitions_are_refused_naming_the_state_and_field(change, named):
    definition = copy.deepcopy(PIPELINE)
    change(definition)
    case = Case(validate={"rows": 1}, features={}, predict={})
    with pytest.raises(UnsupportedDefinition) as refused:
        case.run(definition)
    assert named in str(refused.value)
    assert case.calls == [], "nothing runs before the whole definition is checked"


def test_map_fields_and_missing_services_are_refused():
    definition = without_none(distributed_map(ItemBatcher={"MaxItemsPerBatch": 10}))
    definition["States"]["Shards"]["ItemProcessor"]["States"]["Predict"]["Credentials"] = {}
    with pytest.raises(UnsupportedDefinition) as refused:
        validate(definition)
    assert "state Shards: field ItemBatcher is not supported" in str(refused.value)
    assert "state Predict: field Credentials is not supported" in str(refused.value)
    with pytest.raises(UnsupportedDefinition, match="s3:getObject is used but no service callable was given"):
        Case(predict={}).run(without_none(distributed_map()), {"manifest": "m", "dataset": "d"})


def test_the_repositorys_state_machines_are_supported():
    for name in ("pipeline", "backfill"):
        validate(json.loads((REPO_ROOT / "statemachine" / f"{name}.asl.json").read_text()))


def test_a_lease_release_on_the_failure_path_and_the_first_failure_is_the_one_reported():
    """The pipeline's clean-up path (DESIGN.md): a failed Predict releases the run's lease with a
    dynamodb:deleteItem built by States.Format, whose own failure is caught on the way to the DLQ."""
    states = copy.deepcopy(PIPELINE["States"])
    for name in ("Validate", "Features", "Predict"):
        states[name]["Catch"][0]["Next"] = "HoldsLease"
    states["HoldsLease"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.lease_owner", "IsPresent": True, "Next": "ReleaseLease"}],
        "Default": "DeadLetter",
    }
    states["ReleaseLease"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:deleteItem",
        "ResultPath": None,
        "TimeoutSeconds": 30,
        "Parameters": {
            "TableName": "t",
            "Key": {"pk": {"S.$": "States.Format('DS#{}', $.dataset)"}, "sk": {"S": "LEASE"}},
            "ConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S.$": "$.lease_owner"}},
        },
        "Catch": [
            {"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "ResultPath": "$.lease_error", "Next": "DeadLetter"}
        ],
        "Next": "DeadLetter",
    }
    states["DeadLetter"]["Retry"] = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 5, "JitterStrategy": "FULL"}
    ]
    deleted = []

    def delete_item(params):
        deleted.append(params)
        raise TaskFailed("DynamoDB.ConditionalCheckFailedException", "The conditional request failed")

    case = Case(
        validate={"dataset": "shop"},
        features={"dataset": "shop", "lease_owner": "raw/a.csv#v1"},
        predict=TaskFailed("ValueError", "boom"),
    )
    with pytest.raises(ExecutionFailed) as failed:
        case.run({"StartAt": "Validate", "States": states}, services={"arn:aws:states:::dynamodb:deleteItem": delete_item})
    assert deleted[0]["Key"] == {"pk": {"S": "DS#shop"}, "sk": {"S": "LEASE"}}
    assert deleted[0]["ExpressionAttributeValues"] == {":o": {"S": "raw/a.csv#v1"}}
    assert failed.value.caught == {"state": "Predict", "error": "ValueError", "cause": "boom"}, (
        "the first failure, not the clean-up's"
    )
    (message,) = case.sent
    assert message["MessageBody"]["error"]["Error"] == "ValueError" and message["MessageBody"]["lease_error"]["Error"].startswith(
        "DynamoDB."
    )


@pytest.mark.parametrize(
    ("call", "data", "expected"),
    [
        ("States.Format('DS#{}#RUN#{}', $.ds, $.n)", {"ds": "a", "n": 3}, "DS#a#RUN#3"),
        ("States.Format('it\\'s {}', $.ds)", {"ds": "x"}, "it's x"),
        ("States.StringToJson('10')", {}, 10),
        ("States.JsonToString($.o)", {"o": {"a": [1, 2]}}, '{"a":[1,2]}'),
        ("States.Array($.ds, 1, States.Format('{}-{}', $.ds, 'b'))", {"ds": "a"}, ["a", 1, "a-b"]),
        (  # the pipeline adds its step to a function's input this way (a shallow merge, the right side winning)
            'States.JsonMerge($, States.StringToJson(\'{"step": "plan", "n": {"x": 1}}\'), false)',
            {"ds": "a", "n": {"y": 2}},
            {"ds": "a", "n": {"x": 1}, "step": "plan"},
        ),
    ],
)
def test_intrinsic_functions(call, data, expected):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": call}, "End": True}}}
    assert Case().run(definition, data) == {"v": expected}


def test_map_limits_read_from_the_input_as_the_backfill_does():
    s3 = FakeS3({"b/m.csv": "shard\ns0\ns1\ns2\ns3\n"})
    definition = without_none(distributed_map(ToleratedFailurePercentagePath="$.tolerated", MaxConcurrencyPath="$.threads"))
    definition["States"]["Shards"].pop("MaxConcurrency")
    definition["States"]["Settings"] = {
        "Type": "Pass",
        "Next": "Shards",
        "Parameters": {
            "manifest.$": "$.manifest",
            "dataset.$": "$.dataset",
            "threads": 2,
            "tolerated.$": "States.StringToJson('25')",
        },
    }
    definition["StartAt"] = "Settings"

    def predict(event):
        if event["shard"] == "s1":
            raise TaskFailed("ValueError", "bad")
        return event["shard"]

    assert Case(predict=predict).run(definition, {"manifest": "m.csv", "dataset": "d"}, services=s3.services())[0] == "s0"
    definition["States"]["Settings"]["Parameters"]["tolerated.$"] = "States.StringToJson('0')"
    with pytest.raises(ExecutionFailed, match="ExceedToleratedFailureThreshold|1 of 4"):
        Case(predict=predict).run(definition, {"manifest": "m.csv", "dataset": "d"}, services=s3.services())


@pytest.mark.parametrize("name", ["pipeline", "backfill"])
def test_the_repositorys_state_machines_run_to_the_dead_letter_queue_on_a_failure(name):
    """The real definitions, their substitutions filled, run with every function failing."""
    from lambda_build import template as templatemod
    from lambda_build.offline import definitions

    template = templatemod.load_template()
    definition = definitions.load(template, f"{name.capitalize()}StateMachine", {k: k for k in template["Resources"]})
    s3 = FakeS3({"DataBucket/raw/shop/a.csv": "x"})
    services = {**s3.services(), "arn:aws:states:::dynamodb:deleteItem": lambda params: {}}
    case = Case(
        **{
            arn("lambda", f"function:{f}"): TaskFailed("ValueError", "broken")
            for f in ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction")
        }
    )
    with pytest.raises(ExecutionFailed) as failed:
        case.run(definition, {"prefix": "raw/shop/", "dataset": "shop", **events_object_created()}, services=services)
    assert failed.value.caught["error"] in ("ValueError", "States.ExceedToleratedFailureThreshold") and len(case.sent) == 1


def events_object_created() -> dict:
    from lambda_build.offline.events import object_created

    return object_created("DataBucket", "raw/shop/a.csv", "v1")
