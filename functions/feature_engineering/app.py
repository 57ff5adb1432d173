"""FeatureEngineering: build the feature set of a dataset from all its validated files.

Input: DataValidation's output (``dataset``, ``frequency``) or ``{"dataset": ...}``.
Output: the feature set's and manifest's keys, the input of Predictions.
"""

from item_prediction import steps
from item_prediction.handler_support import COUNT, carried, correlate, logger, metrics, settings, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    correlate(event.get("source_key"), event.get("source_version"))
    if event.get("skipped"):
        return {**carried(event), "skipped": True}
    dataset = event.get("dataset") or "default"
    result = steps.build_feature_set(storage(), settings(), dataset, event.get("frequency"))
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    logger.info("features built", extra={"rows": result["rows"], "series": result["series"], "frequency": result["frequency"]})
    return {**carried(event), **result}
