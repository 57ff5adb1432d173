"""Fixtures for the handlers on moto, shared by the integration tests.

``run_pipeline(key)`` runs the real ``statemachine/pipeline.asl.json`` through the offline Step
Functions runner with the handlers called in-process and moto behind them, so the pipeline's order,
choices and dead-letter path exist once: in the definition.
"""

import importlib
import io
import json
import logging

import boto3
import pytest
from item_prediction.aws import runtime, series_item, table_keys
from lambda_build import template as templatemod
from lambda_build.offline import asl, definitions, events
from lambda_build.offline.emulator import REGION
from lambda_build.offline.services import aws_services
from moto import mock_aws

from ..conftest import FakeContext, create_predictions_table

BUCKET, TABLE, QUEUE = "item-prediction-test", "item-prediction-predictions", "item-prediction-dead-letters"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ItemPredictionTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "item-prediction")
    monkeypatch.setenv("FORECAST_HORIZON", "10")
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        create_predictions_table(TABLE)
        boto3.client("sqs").create_queue(QueueName=QUEUE)
        yield boto3.client("s3")
    runtime.settings.cache_clear()
    runtime.storage.cache_clear()


def object_created(key: str, version: str | None = None) -> dict:
    return events.object_created(BUCKET, key, version)


def object_deleted(key: str, version: str, reason: str = "DeleteObject") -> dict:
    return events.object_deleted(BUCKET, key, version, reason)


def _physical_ids(template: dict) -> dict[str, str]:
    """The template's resources as the tests name them: functions by logical id, the bucket,
    table and dead-letter queue as the ``aws`` fixture creates them."""
    physical = {logical_id: logical_id for logical_id in template["Resources"]}
    queue = boto3.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    return {**physical, "DataBucket": BUCKET, "PredictionsTable": TABLE, "DeadLetterQueue": queue}


RUNNING: list[str] = []  # the logical id of the function whose handler runs now (tests/integration/test_access_moto.py)


def _in_process(template: dict, results: dict, errors: list, calls: list):
    """The runner's ``invoke``: the function's handler called in this process (JSON in, JSON out).
    ``results`` keeps each function's last result per step (``"plan"``, ``"shard"``, ``"aggregate"``,
    or None), ``calls`` every invocation as ``(logical id, step, shard)``."""
    handlers = {
        logical_id: resource["Properties"]["Handler"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    def invoke(function_name: str, payload):
        logical_id = function_name.rsplit(":function:", 1)[-1]
        module, name = handlers[logical_id].rsplit(".", 1)
        handler = getattr(importlib.import_module(module), name)
        step = payload.get("step") if isinstance(payload, dict) else None
        calls.append((logical_id, step, payload.get("shard") if isinstance(payload, dict) else None))
        RUNNING.append(logical_id)
        try:
            result = handler(json.loads(json.dumps(payload)), FakeContext(logical_id))
        except Exception as exc:  # a function error, as Lambda reports it to Step Functions
            errors.append(exc)
            raise asl.TaskFailed(
                type(exc).__name__, json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__})
            ) from exc
        finally:
            RUNNING.pop()
        results[(logical_id, step)] = json.loads(json.dumps(result))
        return results[(logical_id, step)]

    return invoke


class Run(tuple):
    """``(validated, planned, aggregated)`` of one pipeline run (None for a step not reached), with
    ``calls``: every function invocation as ``(logical id, step, shard)``, and ``results``."""

    calls: list
    results: dict

    def shards_run(self, function: str = "PredictionsFunction") -> list[int]:
        return sorted(shard for logical_id, step, shard in self.calls if logical_id == function and step == "shard")


def run_pipeline(
    key: str, version: str | None = None, *, extra: dict | None = None, concurrency: int = 1, sleep=lambda seconds: None
) -> Run:
    """The pipeline state machine on ``key``'s Object Created event (with ``extra`` fields, e.g.
    ``{"mode": "retrain"}``): (validated, planned, aggregated). A function's exception is re-raised
    as it was (the dead-letter path ran first). The shards run one at a time by default
    (``concurrency``): the handlers share this process's module state, unlike Lambda's."""
    template = templatemod.load_template()
    results: dict = {}
    errors: list = []
    calls: list = []
    definition = definitions.load(
        template, "PipelineStateMachine", _physical_ids(template), {"ShardConcurrency": str(concurrency)}
    )
    try:
        asl.run(
            definition,
            {**object_created(key, version), **(extra or {})},
            invoke=_in_process(template, results, errors, calls),
            services=aws_services(),
            sleep=sleep,
        )
    except asl.ExecutionFailed as failed:
        if errors:
            raise errors[-1] from failed
        raise
    run = Run(
        (
            results.get(("DataValidationFunction", None)),
            results.get(("FeatureEngineeringFunction", "plan")),
            results.get(("PredictionsFunction", "aggregate")),
        )
    )
    run.calls, run.results = calls, results
    return run


def plan(event: dict) -> dict:
    """FeatureEngineering's Plan step on ``event`` (a DataValidation output, or ``{"dataset"}``)."""
    from feature_engineering.app import lambda_handler

    return lambda_handler({**event, "step": "plan"}, FakeContext("FeatureEngineeringFunction"))


def shard_items(planned: dict) -> list[dict]:
    """The Plan step's shard list (the Distributed Map's items), each as the map hands it on."""
    return [{**item, "step": "shard"} for item in read_json(boto3.client("s3"), planned["shards_key"])]


def build_shard(item: dict) -> dict:
    """FeatureEngineering's shard step on one item of the plan."""
    from feature_engineering.app import lambda_handler

    return lambda_handler({**item, "step": "shard"}, FakeContext("FeatureEngineeringFunction"))


def predict_shard(featured: dict) -> dict:
    """Predictions' shard step on FeatureEngineering's output for one shard."""
    from predictions.app import lambda_handler

    return lambda_handler({**featured, "step": "shard"}, FakeContext("PredictionsFunction"))


def run_shards(validated: dict) -> tuple[dict, list[dict], list[dict]]:
    """Plan, then every planned shard's BuildFeatures and Predict, in-process, without the state
    machine and its Aggregate (the run's lease stays held): (planned, featured, predicted)."""
    planned = plan(validated)
    featured = [build_shard(item) for item in shard_items(planned)]
    return planned, featured, [predict_shard(result) for result in featured]


def dead_letters() -> list[dict]:
    """The messages in the dead-letter queue (the failed input with its error)."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def series_items() -> list[dict]:
    """Every series' forecast item in the table (``sk = SERIES``), of every run (the CURRENT and
    shard pointers and other records left out)."""
    table = boto3.resource("dynamodb").Table(TABLE)
    series = [item for item in table.scan()["Items"] if item["sk"] == table_keys.SERIES_SK]
    return sorted(series, key=lambda item: item["pk"])


def all_items() -> list[dict]:
    """Every forecast row in the table, of every run: one dict per series item and date (its scalar
    attributes with ``date``, ``prediction`` and the quantiles it stored for that date, read by
    ``series_item.decode``)."""
    rows = []
    for series in series_items():
        forecast = series_item.decode(series)
        kept = {key: value for key, value in series.items() if key not in (series_item.ATTRIBUTE, series_item.FORMAT_ATTRIBUTE)}
        names = [name for name in series_item.VALUES if name in forecast]
        for index, day in enumerate(forecast["dates"]):
            rows.append({**kept, "date": day, **{name: forecast[name][index] for name in names}})
    return rows


def current(dataset: str) -> dict | None:
    """The dataset's CURRENT pointer (the published forecast run), or None."""
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key=table_keys.current_key(dataset), ConsistentRead=True).get("Item")


def read_json(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def validated_rows(dataset: str, count: int = 1, shard: int = 0):
    """The dataset's validated rows (its shard parts, read as FeatureEngineering reads them) and the parts read."""
    from item_prediction.aws.settings import Settings
    from item_prediction.aws.storage import Storage
    from item_prediction.steps import shard_store

    storage = Storage(BUCKET, TABLE, s3=boto3.client("s3"))
    return shard_store.load_shard(storage, Settings(BUCKET, TABLE), dataset, count, shard)


def part_keys(s3, prefix: str = "validated/") -> list[str]:
    """The keys of the validated parts under ``prefix`` (index and manifest files left out)."""
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed if item["Key"].endswith(".parquet"))


def predictions_csv(s3, aggregated: dict):
    """The run's predictions CSV parts (one per shard it ran), as one frame."""
    import pandas as pd

    prefix = f"predictions/{aggregated['dataset']}/{aggregated['run_id']}/"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))
    return pd.concat([read_csv_gz(s3, key) for key in keys], ignore_index=True)


def skipped_reasons(s3, aggregated: dict) -> list[str]:
    """Why the run's skipped shards were skipped (from the run report)."""
    return [entry["reason"] for entry in read_json(s3, aggregated["run_report_key"])["shards_skipped"]]


def shard_model_key(s3, dataset: str, shard: int = 0) -> str:
    """The model a shard's forecast on display was made with (the dataset's latest.json)."""
    return read_json(s3, f"models/{dataset}/latest.json")["shards"][f"{shard:05d}"]["model_key"]


def csv_bytes(frame) -> bytes:
    """A frame of sales rows as an upload's bytes."""
    return frame.to_csv(index=False).encode()


def read_csv_gz(s3, key: str):
    import pandas as pd

    return pd.read_csv(
        io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()), compression="gzip", dtype=str, keep_default_na=False
    )


@pytest.fixture
def log_lines():
    """The Powertools logger's JSON lines (its handler holds the stdout of import time, which
    pytest's capture fixtures do not see; the stdlib's setStream swaps it for the test)."""
    handler = logging.getLogger(runtime.logger.service).handlers[0]
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
