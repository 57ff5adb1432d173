"""FeatureEngineering: rebuild the feature set of a dataset from all its validated files.

Input: DataValidation's output, or ``{"dataset": ...}`` (the backfill), optionally with
``frequency`` (``D``/``W``); a frequency that DataValidation inferred from one file is not
trusted for the whole dataset (it is inferred again from all of it), one from the mapping is.

Output (the input of Predictions): the input's ``bucket``, ``dataset``, ``source_key`` and
``source_version``, plus ``features_key``, ``manifest_key``, ``rows``, ``series``, ``gaps``,
``date_range`` and ``frequency``; or ``{"skipped": true, "reason"}`` when the input was skipped
or the dataset has no validated data.
"""

from item_prediction import steps
from item_prediction.handler_support import COUNT, begin_step, carried, logger, metrics, settings, skipped, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    dataset = begin_step(event)
    if dataset is None:
        return skipped(event, event.get("reason", "skipped upstream"))
    configured = event.get("frequency") if event.get("frequency_source", "mapping") == "mapping" else None
    try:
        result = steps.build_feature_set(storage(), settings(), dataset, configured)
    except steps.NothingToDo as exc:
        logger.warning("no features to build", extra={"reason": str(exc)})
        return skipped(event, str(exc))
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    logger.info("features built", extra={k: result[k] for k in ("rows", "series", "gaps", "frequency", "date_range")})
    return {**carried(event), **result}
