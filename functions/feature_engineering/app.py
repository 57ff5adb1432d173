"""FeatureEngineering: build the feature set of a dataset from all its validated files.

Input: DataValidation's output (``dataset``, ``frequency``) or ``{"dataset": ...}``.
Output: the feature set's and manifest's keys, the input of Predictions.
"""

from item_prediction import steps
from item_prediction.handler_support import COUNT, begin_step, carried, logger, metrics, settings, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    dataset = begin_step(event)
    if dataset is None:
        return {**carried(event), "skipped": True}
    result = steps.build_feature_set(storage(), settings(), dataset, event.get("frequency"))
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    logger.info("features built", extra={"rows": result["rows"], "series": result["series"], "frequency": result["frequency"]})
    return {**carried(event), **result}
