"""What a pipeline step takes in and hands on: the fields carried from step to step, the answer of
a step with nothing to do, and the exception a step raises to give it."""

from __future__ import annotations

import time
from contextlib import contextmanager

from ..aws import ledger
from ..aws.runtime import COUNT, StepTimer, correlate, logger, metrics, storage

CARRIED = ("dataset", "source_key", "source_version", "bucket", "lease_owner")


class NothingToDo(Exception):
    """The step has no work for this input (said in the output as ``skipped`` with the reason)."""


class UnknownStep(ValueError):
    """The event names no step this function runs (it reads, writes and leases nothing)."""


def step_of(event, function: str, steps: tuple[str, ...]) -> str:
    """The event's ``step`` when ``function`` runs it; else UnknownStep, in one line. The functions
    run only as steps of the pipeline (and backfill) state machines, which always name the step."""
    step = event.get("step") if isinstance(event, dict) else None
    if step not in steps:
        raise UnknownStep(
            f"{function} runs only as a state machine step: the event's 'step' must be one of "
            f"{', '.join(repr(name) for name in steps)}, got {step!r:.60} (start the pipeline or the backfill instead)"
        )
    return step


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


def begin_shard(item: dict) -> StepTimer:
    """Start one item of the Distributed Map: its logs name the source object, dataset, shard and
    run, and the run's lease is renewed first, so a long fan-out keeps it (``DatasetBusy`` here
    means another run took it: the item fails). Returns the timer, ``renew_lease`` recorded."""
    correlate(item.get("source_key"), item.get("source_version"))
    logger.append_keys(dataset=item["dataset"], shard=item["shard"], run_id=item["run_id"])
    timer = StepTimer()
    with timer("renew_lease"):
        ledger.acquire_lease(storage().table, item["dataset"], item["lease_owner"], int(time.time()))
    return timer


def take_lease(event: dict, dataset: str) -> tuple[str, StepTimer]:
    """Take the dataset's lease for this run (owner from the source object, see
    :func:`ledger.lease_owner`): ``DatasetBusy`` while another run holds it, which the state
    machine retries later. Returns the owner and the step's timer, ``take_lease`` recorded."""
    owner, timer = ledger.lease_owner(event, dataset), StepTimer()
    with timer("take_lease"):
        ledger.acquire_lease(storage().table, dataset, owner, int(time.time()))
    return owner, timer


@contextmanager
def lease_given_back_on_error(dataset: str, owner: str):
    """Run a step under a lease it just took: any exception (NothingToDo included) gives the lease
    back before it propagates, so neither a skip nor a retry waits for it to expire."""
    try:
        yield
    except BaseException:
        ledger.release_lease(storage().table, dataset, owner)
        raise
