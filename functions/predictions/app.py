"""Predictions: one shard's model and forecast, or the run's Aggregate step.

``"step": "shard"`` (an item of the Distributed Map, after its BuildFeatures): renews the run's
lease (kept), trains and backtests the shard's model (``mode: train_and_predict``, saved under
``models/<ds>/shard=<s:05d>/`` with ``latest.json`` and its SHA-256) or loads the latest one
(``predict``), forecasts the shard's series and writes them under the run's id
(:func:`steps.predict.run_shard`). Output (small: the map's ResultWriter keeps it): ``shard``,
``mode``, ``forecast_id``, ``model_version``, ``model_key``, ``predictions_key``,
``predictions_written`` (forecast rows), ``items_written`` (DynamoDB items: one per series),
``series``, ``forecast_range``, ``data_end``, the backtest's ``sums`` when
it trained, ``plan`` ("file" or "assumed_last_price_no_promotion"), ``plan_key`` and ``plan_rows``
(the dataset's newest plan file, :mod:`item_prediction.steps.plan_file`), ``report_slice`` (its part
of the run's report) and ``durations_ms``; or ``skipped`` with the reason (too little history). A
plan file that cannot be used fails the shard (PlanError, one line).

``"step": "aggregate"``: takes the run's lease again (``DatasetBusy`` when another run took it),
combines the shards' results into the dataset's metrics and publishes the generation
(:mod:`item_prediction.steps.aggregate`), then gives the lease back whatever the outcome. Output:
``run_id``, ``generation``, ``shard_count``, ``shards_run``, ``shards_skipped``, ``metrics`` (exact
dataset MAE and WAPE, model and seasonal naive, and the model's ``coverage_p10_p90``), ``plan``,
``plan_key``, ``predictions_written``, ``items_written``, ``series``, ``horizon``, ``forecast_range``, ``model_key``
(``models/<ds>/latest.json``), ``report_key`` (the forecast report's page, also in CURRENT),
``run_report_key`` (the run report, JSON) and ``durations_ms``.

Any other event (no ``step``, or another one) fails at once with ``UnknownStep``, one line naming the
steps it runs; nothing is read, written or leased (a manual run is a run of the pipeline).

The read path for the HTTP API is :mod:`predictions.api` (``predictions.api.handler``).
"""

import time

from item_prediction.aws import ledger
from item_prediction.aws.runtime import COUNT, StepTimer, correlate, initialise, logger, metrics, settings, storage
from item_prediction.steps import aggregate, predict
from item_prediction.steps.envelope import NothingToDo, begin_shard, carried, step_of

initialise(item_writes=True)  # clients made at init, outside the handler (item_prediction.aws.runtime.initialise)

STEPS = ("shard", "aggregate")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    if step_of(event, "Predictions", STEPS) == "shard":
        return _shard(event)
    try:
        return _aggregate(event)
    finally:
        _release(event)


def _shard(item):
    """One shard's model and forecast (an item of the Distributed Map); renews the run's lease
    and keeps it (the Aggregate step gives it back). A shard its features skipped is passed on."""
    if item.get("skipped"):
        return item
    timer = begin_shard(item)
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
        "shard predicted",
        extra={
            "mode": result["mode"],
            "written": result["predictions_written"],
            "items_written": result["items_written"],
            "durations_ms": durations,
        },
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
    run took it meanwhile. An event without ``lease_owner`` runs without one."""
    if not event.get("lease_owner"):
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
