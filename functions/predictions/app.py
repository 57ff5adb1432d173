"""Predictions: train and backtest the model (or load the latest), forecast every series, store.

Input: FeatureEngineering's output (``dataset``, ``manifest_key``), optionally ``mode``
(``train_and_predict``, the default, or ``predict`` with the latest model) and ``horizon``.
Output: model and prediction keys, the backtest metrics and how many predictions were written.
"""

from item_prediction import prediction_step
from item_prediction.handler_support import COUNT, begin_step, carried, logger, metrics, settings, storage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    dataset = begin_step(event)
    if dataset is None:
        return {**carried(event), "skipped": True}
    manifest_key = event.get("manifest_key") or f"{settings().features_prefix}{dataset}/manifest.json"
    result = prediction_step.run(
        storage(), settings(), dataset, manifest_key, mode=event.get("mode", "train_and_predict"), horizon=event.get("horizon")
    )
    metrics.add_metric(name="PredictionsWritten", unit=COUNT, value=result["predictions_written"])
    logger.info("predicted", extra={"metrics": result["metrics"], "written": result["predictions_written"], "model_version": result["model_version"]})
    return {**carried(event), **result}
