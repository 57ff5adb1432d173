"""FeatureEngineering: rebuild the feature set of a dataset from all its validated files.

Input: DataValidation's output, or ``{"dataset": ...}`` (the backfill), optionally with
``frequency`` (``D``/``W``); a frequency that DataValidation inferred from one file is not
trusted for the whole dataset (it is inferred again from all of it), one from the mapping is.

One run per dataset at a time: before reading anything it takes the dataset's lease (owner
``<source_key>#<source_version>``, or ``backfill#<dataset>`` for an input without a source) and
raises ``DatasetBusy`` while another run holds it (the state machine retries later). It gives
the lease back on its skipped paths and errors; Predictions gives it back at its end.

Output (the input of Predictions): the input's ``bucket``, ``dataset``, ``source_key`` and
``source_version``, plus ``lease_owner``, ``features_key``, ``features_version`` (the VersionId
written, which Predictions reads), ``manifest_key``, ``input_count`` and ``inputs`` (``{key,
version_id}`` of each validated object read, up to 100; all of them are in the manifest),
``rows``, ``series``, ``gaps``, ``date_range``, ``frequency`` and ``durations_ms`` (milliseconds
per step: ``take_lease``, ``read_validated``, ``build_features``, ``write_features``; also in the
last log line and as ``<Step>Duration`` metrics); or ``{"skipped": true, "reason"}`` when the input
was skipped or the dataset has no validated data.
"""

import time

from item_prediction.aws import ledger
from item_prediction.aws.runtime import COUNT, StepTimer, correlate, logger, metrics, settings, storage
from item_prediction.steps import features, plan
from item_prediction.steps.envelope import NothingToDo, begin_step, carried, skipped


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    step = event.get("step") if isinstance(event, dict) else None
    if step == "plan":
        return _plan(event)
    if step == "shard":
        return _shard(event)
    return _whole_dataset(event)


def _plan(event):
    """Take the dataset's lease and plan the run (kept until the Aggregate step gives it back)."""
    dataset = begin_step(event)
    if dataset is None:
        return skipped(event, event.get("reason", "skipped upstream"))
    owner, timer = ledger.lease_owner(event, dataset), StepTimer()
    with timer("take_lease"):
        ledger.acquire_lease(storage().table, dataset, owner, int(time.time()))  # DatasetBusy: retried later
    event = {**event, "dataset": dataset, "bucket": event.get("bucket") or storage().bucket, "lease_owner": owner}
    try:
        with timer("plan"):
            result = plan.plan(storage(), settings(), dataset, event)
    except NothingToDo as exc:
        ledger.release_lease(storage().table, dataset, owner)
        durations = timer.publish()
        logger.info("nothing to run", extra={"reason": str(exc), "durations_ms": durations})
        return skipped(event, str(exc), durations)
    except Exception:
        ledger.release_lease(storage().table, dataset, owner)  # a retry takes it again
        raise
    metrics.add_metric(name="ShardsPlanned", unit=COUNT, value=result["shards_run"])
    durations = timer.publish()
    logger.info(
        "planned", extra={**{k: result[k] for k in ("run_id", "shard_count", "shards_run", "modes")}, "durations_ms": durations}
    )
    concurrency = {"shard_concurrency": event.get("shard_concurrency", 0)}  # the Map's MaxConcurrencyPath
    return {**carried(event), **result, **concurrency, "durations_ms": durations}


def _shard(item):
    """One shard's features (an item of the Distributed Map); renews the run's lease first, so a
    long fan-out keeps it (DatasetBusy here means another run took it: the item fails)."""
    correlate(item.get("source_key"), item.get("source_version"))
    logger.append_keys(dataset=item["dataset"], shard=item["shard"], run_id=item["run_id"])
    timer = StepTimer()
    with timer("renew_lease"):
        ledger.acquire_lease(storage().table, item["dataset"], item["lease_owner"], int(time.time()))
    try:
        result = features.build_shard(storage(), settings(), item, timer=timer)
    except NothingToDo as exc:
        durations = timer.publish()
        logger.warning("no features to build", extra={"reason": str(exc), "durations_ms": durations})
        return {**item, "skipped": True, "reason": str(exc), "durations_ms": durations}
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    durations = timer.publish()
    logger.info("shard features built", extra={"rows": result["rows"], "mode": result["mode"], "durations_ms": durations})
    return {**result, "durations_ms": durations}


def _whole_dataset(event):
    dataset = begin_step(event)
    if dataset is None:
        return skipped(event, event.get("reason", "skipped upstream"))
    owner, timer = ledger.lease_owner(event, dataset), StepTimer()
    with timer("take_lease"):
        ledger.acquire_lease(storage().table, dataset, owner, int(time.time()))  # DatasetBusy: retried later
    event = {**event, "lease_owner": owner}
    configured = event.get("frequency") if event.get("frequency_source", "mapping") == "mapping" else None
    try:
        result = features.build_feature_set(storage(), settings(), dataset, configured, timer=timer)
    except NothingToDo as exc:
        ledger.release_lease(storage().table, dataset, owner)
        durations = timer.publish()
        logger.warning("no features to build", extra={"reason": str(exc), "durations_ms": durations})
        return skipped(event, str(exc), durations)
    except Exception:
        ledger.release_lease(storage().table, dataset, owner)  # a retry takes it again
        raise
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    durations = timer.publish()
    logged = {k: result[k] for k in ("rows", "series", "gaps", "frequency", "date_range")}
    logger.info("features built", extra={**logged, "durations_ms": durations})
    return {**carried(event), **result, "durations_ms": durations}
