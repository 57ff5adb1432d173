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
