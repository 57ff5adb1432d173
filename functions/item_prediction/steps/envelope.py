"""What a pipeline step takes in and hands on: the fields carried from step to step, the answer of
a step with nothing to do, and the exception a step raises to give it."""

from __future__ import annotations

from ..aws.runtime import COUNT, correlate, metrics

CARRIED = ("dataset", "source_key", "source_version", "bucket", "lease_owner")


class NothingToDo(Exception):
    """The step has no work for this input (said in the output as ``skipped`` with the reason)."""


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


def skipped(event: dict, reason: str, durations: dict | None = None) -> dict:
    """The answer of a step with nothing to do: counted, and carrying the source object on (and
    the ``durations_ms`` of the steps it ran before it found out, if any)."""
    metrics.add_metric(name="Skipped", unit=COUNT, value=1)
    return {**carried(event), "skipped": True, "reason": reason, **({"durations_ms": durations} if durations else {})}
