"""DataValidation: validate one uploaded sales file into clean and quarantined rows and a report.

Input (any of):

* the EventBridge "Object Created" event for ``raw/<dataset>/<file>`` (the state machine's input),
  or "Object Deleted" (the upload's rows are retracted);
* an S3 event notification (``Records``);
* ``{"bucket": ..., "key": ..., "version_id": ..., "mapping_key": ..., "force": true}`` (a re-run,
  the backfill); ``mapping_key`` optionally names the column mapping to use; without
  ``version_id`` the current version is validated; ``force`` validates a version again although
  it was already processed.

Output (the input of FeatureEngineering)::

    {"bucket", "dataset", "source_key", "source_version", "quarantine_key" (when rows were
     quarantined), "report_key", "rows": {"in", "clean", "quarantined"}, "rules": {rule: count},
     "file_reason", "frequency", "frequency_source", "known_in_advance" (the mapping's, when it
     could be used), "validated_version", "durations_ms",
     "shard_count", "shards_written": [{"shard_count", "shard", "rows"}],
     "shards_removed": [{"shard_count", "shard"}], ["skipped": true, "reason"]}

The clean rows are Parquet parts ``validated/<dataset>/n=<shard_count>/shard=<s:05d>/<file>.parquet``,
one per shard with rows (``shards_written``); ``shards_removed`` names the parts of an earlier
version of the same upload that were deleted (so those shards are rebuilt too). With more than
1,000 entries in all, both lists are in the S3 JSON ``shards_key``
(``runs/<dataset>/uploads/<file>.shards.json``) instead (``shard_store.touched_shards`` reads either).

``durations_ms``: milliseconds per step, ``validate`` (the mapping, reading the upload as it
streams, the rules) and ``write_outputs`` (clean and quarantined rows, the report), as in the last
log line and the ``ValidateDuration`` and ``WriteOutputsDuration`` metrics.

``mode`` (``retrain``) when the event carried one: the Plan step then retrains every shard.

``validated_version`` is the version whose rows were written: the event's, unless a newer version
of the key arrived while it was validated (its rows are then written in their place).

or, for a deleted upload whose validated rows were removed, ``{"bucket", "dataset", "source_key",
"source_version", "retracted": true, "removed_count", "removed_keys" (the first 100), "report_key",
"shards_written": [], "shards_removed"}`` (the run goes on, so those shards are rebuilt without the rows).

``skipped`` (the state machine stops there, one line in ``reason``) when the object is not a
sales file (outside ``raw/``, a ``_mapping.json``, a hidden file, a plan file under
``raw/<dataset>/plan/``: "a plan file, read at forecast time"), its dataset name is not
allowed (metric ``RejectedUploads``; the object is left as it is), the event's version is no
longer the current one (``superseded: ...``), the same version was already processed
(``already processed: ...``, a duplicate event), the file brought no clean rows, or a deletion
left nothing to retract. A user's broken file is never an error: it is quarantined with its
reasons and the report says why.
"""

import time
from datetime import UTC, datetime

from item_prediction.aws import ledger
from item_prediction.aws.events import is_lifecycle_expiration, object_ref
from item_prediction.aws.runtime import COUNT, StepTimer, correlate, initialise, logger, metrics, settings, storage
from item_prediction.aws.settings import DatasetNameError
from item_prediction.steps import validate
from item_prediction.steps.envelope import NothingToDo

initialise()  # clients made at init, outside the handler (item_prediction.aws.runtime.initialise)


def _skip(ref, reason: str, metric: str = "Skipped") -> dict:
    logger.info("nothing to validate", extra={"key": ref.key, "reason": reason})
    metrics.add_metric(name=metric, unit=COUNT, value=1)
    return {"skipped": True, "bucket": ref.bucket, "source_key": ref.key, "source_version": ref.version_id, "reason": reason}


def _retract(event, ref, dataset: str):
    """A deleted upload: retract its rows, or validate the version that became current instead.
    Returns (output, None) when done, or (None, the version to validate)."""
    if is_lifecycle_expiration(event):
        raise NothingToDo(f"{ref.key} expired by the bucket's retention rules: its validated rows stay in the dataset")
    survivor = validate.survivor_after_delete(storage(), settings(), dataset, ref)
    if survivor is not None:
        return None, survivor
    result = validate.retract_source(storage(), settings(), dataset, ref, now=datetime.now(UTC))
    metrics.add_metric(name="SourcesRetracted", unit=COUNT, value=1)
    logger.warning(
        "upload deleted: its rows are retracted",
        extra={"removed_keys": result["removed_keys"], "report_key": result["report_key"]},
    )
    return result, None


def _validate(event, ref, dataset: str, *, force: bool, busy_seconds: int, timer: StepTimer) -> dict:
    """Claim the upload version in the ledger, validate it, and mark it done (or free the claim)."""
    table, now = storage().table, int(time.time())
    if ref.version_id and not ledger.claim_source(
        table, dataset, ref.key, ref.version_id, now=now, busy_seconds=busy_seconds, force=force
    ):
        raise NothingToDo(f"already processed: {ref.key} version {ref.version_id}")
    try:
        result = validate.validate_current(storage(), settings(), ref, mapping_key=event.get("mapping_key"), timer=timer)
    except Exception:
        if ref.version_id:
            ledger.forget_source(table, dataset, ref.key, ref.version_id)  # a retry may validate it
        raise
    if ref.version_id:
        ledger.finish_source(table, dataset, ref.key, ref.version_id, now=int(time.time()))
    return result


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    ref = object_ref(event)
    correlate(ref.key, ref.version_id)
    reason = validate.skip_reason(settings(), ref.key)
    if reason:
        return _skip(ref, reason)
    try:
        dataset = settings().dataset_of(ref.key)
    except DatasetNameError as exc:
        return _skip(ref, str(exc), "RejectedUploads")
    force, timer = event.get("force") is True, StepTimer()
    try:
        if ref.deleted:
            retracted, ref = _retract(event, ref, dataset)
            if retracted:
                return {**retracted, **({"mode": event["mode"]} if event.get("mode") else {})}
            force = True  # the version now current replaces the deleted one's outputs
        else:
            ref = validate.pin_current_version(storage(), ref)
        correlate(ref.key, ref.version_id)  # the version this run reads, also when the event named none
        busy_seconds = int(getattr(context, "get_remaining_time_in_millis", lambda: 900_000)() / 1000) + 5
        result = _validate(event, ref, dataset, force=force, busy_seconds=busy_seconds, timer=timer)
    except NothingToDo as exc:
        return _skip(ref, str(exc))
    result["durations_ms"] = timer.publish()
    if event.get("mode"):  # a retrain request rides on to the Plan step
        result["mode"] = event["mode"]
    if result.get("retracted"):  # deleted while it was validated
        return result
    for name, value in (
        ("RowsIn", result["rows"]["in"]),
        ("RowsClean", result["rows"]["clean"]),
        ("RowsQuarantined", result["rows"]["quarantined"]),
    ):
        metrics.add_metric(name=name, unit=COUNT, value=value)
    if result["file_reason"]:  # a whole file quarantined: the run succeeds, the FilesQuarantined alarm tells
        metrics.add_metric(name="FilesQuarantined", unit=COUNT, value=1)
    log = logger.warning if result["file_reason"] or result["rows"]["quarantined"] else logger.info
    log(
        "validated",
        extra={
            "rows": result["rows"],
            "rules": result["rules"],
            "file_reason": result["file_reason"],
            "report_key": result["report_key"],
            "durations_ms": result["durations_ms"],
        },
    )
    return result
