"""DataValidation: validate one uploaded sales file into clean and quarantined rows and a report.

Input: the EventBridge "Object Created" event for ``raw/<dataset>/<file>`` (the state machine's
input), an S3 notification, or ``{"bucket", "key"}``. Output: the keys written and row counts,
the input of FeatureEngineering.
"""

from item_prediction import steps
from item_prediction.events import object_ref
from item_prediction.handler_support import COUNT, correlate, logger, metrics, settings, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    ref = object_ref(event)
    correlate(ref.key, ref.version_id)
    if not ref.key.startswith(settings().raw_prefix):
        logger.warning("not under the raw prefix: nothing to validate", extra={"key": ref.key})
        return {"skipped": True, "source_key": ref.key, "reason": f"not under {settings().raw_prefix}"}
    result = steps.validate_object(storage(), settings(), ref)
    for name, value in (("RowsIn", result["rows"]["in"]), ("RowsClean", result["rows"]["clean"]), ("RowsQuarantined", result["rows"]["quarantined"])):
        metrics.add_metric(name=name, unit=COUNT, value=value)
    logger.info("validated", extra={"rows": result["rows"], "rules": result["rules"], "file_reason": result["file_reason"]})
    return result
