"""The local stack's pool of execution environments: warm reuse, scale-out under concurrency,
the runner's invoke contract (a function error becomes TaskFailed with Lambda's error JSON)."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
from lambda_build.offline import stack as stackmod
from lambda_build.offline.emulator import arn as offline_arn
from lambda_build.offline.errors import TaskFailed
from lambda_build.offline.sandbox import Invocation, compute_threads


class FakeFunction:
    """Stands in for the sandbox's LocalFunction: records its work folder, blocks while told to."""

    made: list[FakeFunction] = []

    def __init__(self, name, handler, code_dir, layers, *, work_dir, memory_mb, **kwargs) -> None:
        self.work_dir, self.memory_mb, self.calls = work_dir, memory_mb, 0
        self.log_group, self.log_stream = f"/aws/lambda/{name}", "s"
        FakeFunction.made.append(self)

    def invoke(self, event) -> Invocation:
        self.calls += 1
        if event.get("wait"):
            event["wait"].wait()
        invocation = Invocation(request_id="r", memory_mb=self.memory_mb, init_ms=1.0 if self.calls == 1 else None)
        if event.get("fail"):
            invocation.error = {"errorType": "ValueError", "errorMessage": "bad"}
        else:
            invocation.result = {"ok": True, **({"durations_ms": event["durations"]} if "durations" in event else {})}
        return invocation

    def stop(self) -> None:
        pass


@pytest.fixture
def local_stack(monkeypatch, tmp_path):
    FakeFunction.made = []
    monkeypatch.setattr(stackmod, "LocalFunction", FakeFunction)
    monkeypatch.setattr(stackmod, "ship_logs", lambda *args: None)
    lambda_client = SimpleNamespace(
        get_function_configuration=lambda FunctionName: {
            "FunctionName": FunctionName,
            "MemorySize": 512,
            "Timeout": 30,
            "Environment": {"Variables": {"A": "1"}},
        }
    )
    monkeypatch.setattr(stackmod, "boto", lambda service: lambda_client)
    spec = SimpleNamespace(logical_id="PredictionsFunction", handler="predictions.app.lambda_handler", layers=())
    monkeypatch.setattr(stackmod.templatemod, "functions", lambda config: [spec])
    config = SimpleNamespace(python_version="3.13", layer_output=lambda layer: None, layer=lambda name: None)
    emulator = SimpleNamespace(environ=lambda: {"AWS_ENDPOINT_URL": "http://localhost:1"})
    return stackmod.LocalStack(config, {"PredictionsFunction": "stack-Predictions"}, emulator, tmp_path)


def test_an_idle_environment_is_reused_and_a_busy_one_makes_another(local_stack):
    arn = offline_arn("lambda", "function:stack-Predictions")
    assert local_stack.invoke(arn, {}) == {"ok": True}
    assert local_stack.invoke(arn, {}) == {"ok": True}
    assert len(FakeFunction.made) == 1, "sequential invocations stay warm in one environment"
    release = threading.Event()
    both = [threading.Thread(target=local_stack.invoke, args=(arn, {"wait": release, "shard": n})) for n in (1, 2)]
    for thread in both:
        thread.start()
    while sum(f.calls for f in FakeFunction.made) < 4:
        threading.Event().wait(0.01)
    release.set()
    for thread in both:
        thread.join()
    assert len(FakeFunction.made) == 2 and len({f.work_dir for f in FakeFunction.made}) == 2, "two at once: two environments"
    assert sorted(r["shard"] for r in local_stack.reports if r["shard"]) == [1, 2]
    assert all(r["memory_size_mb"] == 512 and r["function"] == "PredictionsFunction" for r in local_stack.reports)


def test_a_function_error_is_task_failed_with_lambdas_error_json(local_stack):
    with pytest.raises(TaskFailed) as failed:
        local_stack.invoke("stack-Predictions", {"fail": True})
    assert failed.value.error == "ValueError" and json.loads(failed.value.cause)["errorMessage"] == "bad"


def test_settings_the_emulators_cloudformation_drops_are_applied(monkeypatch):
    """moto's CloudFormation creates the bucket unversioned and the table without TTL; the ingest
    ledger and version pinning need versions, so the offline stack applies both itself."""
    import boto3
    from lambda_build import template as templatemod
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    template = templatemod.load_template()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="data")
        boto3.client("dynamodb").create_table(
            TableName="table",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        stackmod.apply_dropped_settings(template, {"DataBucket": "data", "PredictionsTable": "table"})
        assert boto3.client("s3").get_bucket_versioning(Bucket="data")["Status"] == "Enabled"
        ttl = boto3.client("dynamodb").describe_time_to_live(TableName="table")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_each_invocation_record_carries_the_step_durations_its_output_reports(local_stack):
    arn = offline_arn("lambda", "function:stack-Predictions")
    local_stack.invoke(arn, {"durations": {"fit": 812.5, "flip": 3.1}})
    local_stack.invoke(arn, {})  # an output without them (the read API)
    with pytest.raises(TaskFailed):
        local_stack.invoke(arn, {"fail": True})
    assert [record["durations_ms"] for record in local_stack.reports] == [{"fit": 812.5, "flip": 3.1}, None, None]


def test_an_environment_gets_the_threads_of_its_whole_vcpus_within_the_machine():
    assert compute_threads(128, cpus=2) == compute_threads(3008, cpus=2) == 1  # less than two vCPUs
    assert compute_threads(3538, cpus=2) == 2 and compute_threads(10240, cpus=2) == 2  # not past the machine
    assert compute_threads(10240, cpus=8) == 5
