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
from item_prediction.aws.runtime import COUNT, StepTimer, logger, metrics, settings, storage
from item_prediction.steps import features
from item_prediction.steps.envelope import NothingToDo, begin_step, carried, skipped


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
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
