"""What the three handlers share: settings, storage, Powertools objects and the correlation id."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .settings import Settings
from .storage import Storage

logger = Logger()
metrics = Metrics()
COUNT = MetricUnit.Count
CARRIED = ("dataset", "source_key", "source_version", "bucket", "lease_owner")


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def storage() -> Storage:
    current = settings()
    return Storage(current.bucket, current.table)


def correlate(key: str | None, version: str | None) -> None:
    """Every log line of this invocation carries the input object's key and version:
    ``<key>#<version>``, or ``<key>`` alone when the bucket gave no version."""
    if key:
        logger.set_correlation_id(f"{key}#{version}" if version else key)
        logger.append_keys(source_key=key, source_version=version)


def carried(event: dict) -> dict:
    """The fields each step passes on, so the next step (and its logs) know the source object."""
    return {name: event[name] for name in CARRIED if isinstance(event, dict) and name in event}


def begin_step(event: dict) -> str | None:
    """Start a step after validation: correlate its logs with the source object and return the
    dataset to work on, or None when validation skipped the object (nothing to do)."""
    correlate(event.get("source_key"), event.get("source_version"))
    if event.get("skipped"):
        return None
    return event.get("dataset") or "default"


def skipped(event: dict, reason: str) -> dict:
    """The answer of a step with nothing to do: counted, and carrying the source object on."""
    metrics.add_metric(name="Skipped", unit=COUNT, value=1)
    return {**carried(event), "skipped": True, "reason": reason}
