"""What every handler shares at run time: settings and storage (made once per container), the
Powertools logger and metrics, the correlation id of its log lines and the timer of its steps."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from . import columnar
from .settings import Settings
from .storage import Storage

logger = Logger()
metrics = Metrics()
COUNT = MetricUnit.Count
MILLISECONDS = MetricUnit.Milliseconds


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def storage() -> Storage:
    current = settings()
    return Storage(current.bucket, current.table)


def initialise(*, parquet: bool = True, item_writes: bool = False) -> None:
    """What a handler module makes while its environment initialises, as Lambda advises (SDK
    clients outside the handler): the storage's clients (:meth:`Storage.connect`) and, with
    ``parquet``, the Parquet engine (~40 ms to import). A cold invocation's duration then no longer
    carries them; the environment's Init Duration does, once. Only in a Lambda environment: tests
    and tools that import a handler stay lazy. A malformed setting is left to the first
    invocation to raise, where its log shows it."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    try:
        current = storage()
    except ValueError:
        return
    current.connect(item_writes=item_writes)
    if parquet:
        columnar.engine()


def correlate(key: str | None, version: str | None) -> None:
    """Every log line of this invocation carries the input object's key and version:
    ``<key>#<version>``, or ``<key>`` alone when the bucket gave no version."""
    if key:
        logger.set_correlation_id(f"{key}#{version}" if version else key)
        logger.append_keys(source_key=key, source_version=version)


def duration_metric(step: str) -> str:
    """The EMF metric of a step: ``write_items`` -> ``WriteItemsDuration`` (one metric per step name;
    the step names differ between the functions, so a metric names one function's step)."""
    return "".join(part.capitalize() for part in step.split("_")) + "Duration"


class StepTimer:
    """The wall time of an invocation's steps, in milliseconds by step name.

    ``with timer("fit"): ...`` adds the block's time under ``fit`` (also when it raises; a step
    timed twice, such as a validation redone for a newer version, adds up). The steps layer times
    its calls to the domain; the handler then :meth:`publish` es the durations once.
    """

    def __init__(self) -> None:
        self.durations_ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.durations_ms[step] = self.durations_ms.get(step, 0.0) + elapsed

    def publish(self) -> dict[str, float]:
        """Emit one ``<Step>Duration`` metric (Milliseconds) per step timed and return the durations
        (rounded to 0.1 ms) for the handler's last log line and its output (``durations_ms``)."""
        durations = {step: round(value, 1) for step, value in self.durations_ms.items()}
        for step, value in durations.items():
            metrics.add_metric(name=duration_metric(step), unit=MILLISECONDS, value=value)
        return durations
