"""The correlation id every log line of a pipeline run carries."""

from __future__ import annotations

import pytest
from item_prediction.aws import runtime


@pytest.mark.parametrize(
    ("key", "version", "expected"),
    [
        ("raw/sales/jan.csv", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "raw/sales/jan.csv#3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
        ("raw/sales/jan.csv", None, "raw/sales/jan.csv"),
        ("raw/sales/jan.csv", "", "raw/sales/jan.csv"),
    ],
)
def test_the_correlation_id_is_key_and_version_or_the_key_alone(key, version, expected):
    runtime.correlate(key, version)
    assert runtime.logger.get_correlation_id() == expected


class FakeClock:
    """perf_counter for the timer: each reading moves on by the next of ``steps`` seconds."""

    def __init__(self, *steps: float) -> None:
        self.now, self.steps = 100.0, list(steps)

    def __call__(self) -> float:
        self.now += self.steps.pop(0) if self.steps else 0.0
        return self.now


def test_the_step_timer_adds_up_each_steps_milliseconds_also_when_it_raises(monkeypatch):
    monkeypatch.setattr(runtime.time, "perf_counter", FakeClock(0, 0.25, 0, 1.5, 0, 0.0001))
    timer = runtime.StepTimer()
    with timer("validate"):
        pass
    with pytest.raises(RuntimeError), timer("write_outputs"):
        raise RuntimeError("the write failed")
    with timer("validate"):  # redone (a newer version arrived): the time adds up
        pass
    assert timer.durations_ms == pytest.approx({"validate": 250.1, "write_outputs": 1500.0})


def test_publishing_emits_one_milliseconds_metric_per_step_and_returns_the_durations(monkeypatch):
    monkeypatch.setattr(runtime.time, "perf_counter", FakeClock(0, 0.01234, 0, 2.0))
    timer = runtime.StepTimer()
    with timer("read_features"):
        pass
    with timer("write_items"):
        pass
    runtime.metrics.clear_metrics()
    try:
        assert timer.publish() == {"read_features": 12.3, "write_items": 2000.0}
        emitted = {name: (metric["Unit"], metric["Value"]) for name, metric in runtime.metrics.metric_set.items()}
    finally:
        runtime.metrics.clear_metrics()
    assert emitted == {"ReadFeaturesDuration": ("Milliseconds", [12.3]), "WriteItemsDuration": ("Milliseconds", [2000.0])}


@pytest.mark.parametrize(
    ("step", "metric"), [("fit", "FitDuration"), ("write_items", "WriteItemsDuration"), ("take_lease", "TakeLeaseDuration")]
)
def test_a_steps_metric_is_its_name_in_pascal_case_and_duration(step, metric):
    assert runtime.duration_metric(step) == metric


@pytest.fixture
def fresh_runtime(monkeypatch):
    """The runtime's cached settings and storage made anew for the test, and again after it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("BUCKET_NAME", "a-bucket")
    monkeypatch.setenv("TABLE_NAME", "a-table")
    runtime.settings.cache_clear(), runtime.storage.cache_clear()
    yield
    runtime.settings.cache_clear(), runtime.storage.cache_clear()


def _clients(storage) -> dict:
    made = {"s3": storage._s3, "dynamodb": storage._dynamodb, "writer": storage._dynamodb_client}
    return {name: client is not None for name, client in made.items()}


def test_a_lambda_environment_makes_its_clients_at_init(fresh_runtime, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "PredictionsFunction")
    runtime.initialise(item_writes=True)
    assert _clients(runtime.storage()) == {"s3": True, "dynamodb": True, "writer": True}
    runtime.storage.cache_clear()
    runtime.initialise(parquet=False)
    assert _clients(runtime.storage()) == {"s3": True, "dynamodb": True, "writer": False}


def test_outside_lambda_the_clients_stay_lazy(fresh_runtime, monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    runtime.initialise(item_writes=True)
    assert _clients(runtime.storage()) == {"s3": False, "dynamodb": False, "writer": False}


def test_a_malformed_setting_is_left_to_the_first_invocation(fresh_runtime, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "FeatureEngineeringFunction")
    monkeypatch.setenv("CHUNK_ROWS", "many")
    runtime.initialise()  # no exception at init: the handler's first call raises it, in its log
    with pytest.raises(ValueError, match="CHUNK_ROWS must be an integer"):
        runtime.storage()
