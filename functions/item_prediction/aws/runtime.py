"""What every handler shares at run time: settings and storage (made once per container), the
Powertools logger and metrics, and the correlation id of its log lines."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .settings import Settings
from .storage import Storage

logger = Logger()
metrics = Metrics()
COUNT = MetricUnit.Count


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
