"""Predictions: train and backtest the model (or load the latest), forecast every series, store.

Input: FeatureEngineering's output (``dataset``, ``manifest_key``), or ``{"dataset": ...}``,
optionally with ``mode`` and ``horizon`` (periods, 1 to 366; default ``FORECAST_HORIZON``, else
14 for daily and 8 for weekly data):

* ``"mode": "train_and_predict"`` (default): backtest against seasonal naive, train on all
  periods, save the model under ``models/<dataset>/<version>/`` and ``latest.json``, forecast;
* ``"mode": "predict"``: forecast with the model ``models/<dataset>/latest.json`` points at, once
  its SHA-256 matches the one latest.json records.

A run's predictions are written under its ``forecast_id``, then the dataset's CURRENT pointer
is flipped to it (see :mod:`item_prediction.steps.predict`).

Output: ``model_key``, ``model_version``, ``forecast_id``, ``predictions_key``, ``predictions_written``,
``series``, ``horizon``, ``forecast_range`` and the backtest ``metrics`` (``model`` and
``seasonal_naive`` MAE/WAPE, ``mae_improvement``, ``mae_ratio``, ``beats_baseline``), with the
input's ``bucket``, ``dataset``, ``source_key`` and ``source_version``; or ``{"skipped": true,
"reason"}`` when the input was skipped or the dataset is too short to train and backtest on.

Also in the output, ``durations_ms``: milliseconds per step (``retake_lease``,
``read_features``, ``backtest``, ``fit``, ``save_model`` or ``load_model``, ``forecast``,
``write_items``, ``write_csv``, ``flip``), as in the last log line and the ``<Step>Duration`` metrics.

The dataset's lease: FeatureEngineering took it for the run (``lease_owner`` in the input); this
function takes it again at its start (re-entrant for the same owner), since a retried attempt
follows a failed one that gave it back, and raises ``DatasetBusy`` when another run took it
meanwhile (the state machine retries later). An input without ``lease_owner`` (a manual predict)
takes none. At its end, whatever the path (predicted, skipped, failed), it gives the lease back,
so the next run can start.

The read path for the HTTP API is :mod:`predictions.api` (``predictions.api.handler``).
"""

import time

from item_prediction.aws import ledger
from item_prediction.aws.runtime import COUNT, StepTimer, correlate, logger, metrics, settings, storage
from item_prediction.steps import aggregate, predict
from item_prediction.steps.envelope import NothingToDo, begin_step, carried, skipped


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    step = event.get("step") if isinstance(event, dict) else None
    if step == "shard":
        return _shard(event)
    try:
        return _aggregate(event) if step == "aggregate" else _predict(event, StepTimer())
    finally:
        _release(event)


def _shard(item):
    """One shard's model and forecast (an item of the Distributed Map); renews the run's lease
    and keeps it (the Aggregate step gives it back). A shard its features skipped is passed on."""
    if item.get("skipped"):
        return item
    correlate(item.get("source_key"), item.get("source_version"))
    logger.append_keys(dataset=item["dataset"], shard=item["shard"], run_id=item["run_id"])
    timer = StepTimer()
    with timer("renew_lease"):
        ledger.acquire_lease(storage().table, item["dataset"], item["lease_owner"], int(time.time()))
    try:
        result = predict.run_shard(storage(), settings(), item, timer=timer)
    except NothingToDo as exc:
        durations = timer.publish()
        logger.warning("nothing to predict", extra={"reason": str(exc), "durations_ms": durations})
        return {
            "dataset": item["dataset"],
            "shard": item["shard"],
            "skipped": True,
            "reason": str(exc),
            "durations_ms": durations,
        }
    metrics.add_metric(name="PredictionsWritten", unit=COUNT, value=result["predictions_written"])
    durations = timer.publish()
    logger.info(
        "shard predicted", extra={"mode": result["mode"], "written": result["predictions_written"], "durations_ms": durations}
    )
    return {**result, "durations_ms": durations}


def _aggregate(event):
    """Combine the shards' results and publish the generation; the lease is given back after."""
    correlate(event.get("source_key"), event.get("source_version"))
    timer = StepTimer()
    _retake(event, event["dataset"], timer)
    with timer("aggregate"):
        result = aggregate.aggregate(storage(), settings(), event)
    durations = timer.publish()
    logger.info("aggregated", extra={"metrics": result["metrics"], "shards_run": result["shards_run"], "durations_ms": durations})
    return {**carried(event), **result, "durations_ms": durations}


def _retake(event, dataset: str, timer: StepTimer) -> None:
    """Hold the run's lease again (a retry's failed attempt gave it back); DatasetBusy when another
    run took it meanwhile. A manual predict (no ``lease_owner``) runs without one."""
    if not isinstance(event, dict) or not event.get("lease_owner"):
        return
    with timer("retake_lease"):
        ledger.acquire_lease(storage().table, dataset, event["lease_owner"], int(time.time()))


def _release(event) -> None:
    """Give the dataset's lease back; a failure here must not hide the run's own outcome (an
    unreleased lease expires by itself, ``ledger.LEASE_SECONDS`` after it was taken)."""
    if not isinstance(event, dict) or not event.get("lease_owner"):
        return
    try:
        ledger.release_lease(storage().table, event.get("dataset") or "default", event["lease_owner"])
    except Exception:  # noqa: BLE001 - logged with its traceback; the lease expires anyway
        logger.exception("could not release the dataset's lease", extra={"owner": event["lease_owner"]})


def _predict(event, timer: StepTimer):
    dataset = begin_step(event)
    if dataset is None:
        return skipped(event, event.get("reason", "skipped upstream"))
    _retake(event, dataset, timer)
    manifest_key = event.get("manifest_key") or f"{settings().features_prefix}{dataset}/manifest.json"
    try:
        result = predict.run(
            storage(),
            settings(),
            dataset,
            manifest_key,
            mode=event.get("mode") or "train_and_predict",
            horizon=event.get("horizon"),
            timer=timer,
        )
    except NothingToDo as exc:
        durations = timer.publish()
        logger.warning("nothing to predict", extra={"reason": str(exc), "durations_ms": durations})
        return skipped(event, str(exc), durations)
    metrics.add_metric(name="PredictionsWritten", unit=COUNT, value=result["predictions_written"])
    durations = timer.publish()
    logged = {"metrics": result["metrics"], "written": result["predictions_written"], "model_version": result["model_version"]}
    logger.info("predicted", extra={**logged, "durations_ms": durations})
    return {**carried(event), **result, "durations_ms": durations}
