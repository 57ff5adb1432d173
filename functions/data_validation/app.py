"""DataValidation: validate one uploaded sales file into clean and quarantined rows and a report.

Input (any of):

* the EventBridge "Object Created" event for ``raw/<dataset>/<file>`` (the state machine's input);
* an S3 event notification (``Records``);
* ``{"bucket": ..., "key": ..., "version_id": ..., "mapping_key": ...}`` (a re-run, the backfill);
  ``mapping_key`` optionally names the column mapping to use.

Output (the input of FeatureEngineering)::

    {"bucket", "dataset", "source_key", "source_version", "validated_key" (when rows were clean),
     "quarantine_key" (when rows were quarantined), "report_key",
     "rows": {"in", "clean", "quarantined"}, "rules": {rule: count}, "file_reason",
     "frequency", "frequency_source", ["skipped": true, "reason"]}

``skipped`` (the state machine stops there) when the object is not a sales file (outside
``raw/``, a ``_mapping.json``, a hidden file) or brought no clean rows. A user's broken file is
never an error: it is quarantined with its reasons and the report says why.
"""

from item_prediction import steps
from item_prediction.events import object_ref
from item_prediction.handler_support import COUNT, correlate, logger, metrics, settings, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    ref = object_ref(event)
    correlate(ref.key, ref.version_id)
    reason = steps.skip_reason(settings(), ref.key)
    if reason:
        logger.info("not a sales file: nothing to validate", extra={"key": ref.key, "reason": reason})
        metrics.add_metric(name="Skipped", unit=COUNT, value=1)
        return {"skipped": True, "bucket": ref.bucket, "source_key": ref.key, "reason": reason}
    result = steps.validate_object(storage(), settings(), ref, mapping_key=event.get("mapping_key"))
    for name, value in (("RowsIn", result["rows"]["in"]), ("RowsClean", result["rows"]["clean"]), ("RowsQuarantined", result["rows"]["quarantined"])):
        metrics.add_metric(name=name, unit=COUNT, value=value)
    if result["file_reason"]:  # a whole file quarantined: the run succeeds, the FilesQuarantined alarm tells
        metrics.add_metric(name="FilesQuarantined", unit=COUNT, value=1)
    log = logger.warning if result["file_reason"] or result["rows"]["quarantined"] else logger.info
    log("validated", extra={"rows": result["rows"], "rules": result["rules"], "file_reason": result["file_reason"], "report_key": result["report_key"]})
    return result
