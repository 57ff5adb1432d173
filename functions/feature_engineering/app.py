"""FeatureEngineering: the Plan step of a run, or one shard's features.

``"step": "plan"`` (the pipeline's Plan state; input: DataValidation's output, or ``{"dataset"}``
from the backfill, optionally ``mode: retrain`` and ``horizon``): takes the dataset's lease (owner
``<source_key>#<source_version>``, or ``backfill#<dataset>``; ``DatasetBusy`` while another run holds
it, which the state machine retries) and plans the run (:mod:`item_prediction.steps.plan`): writes
``runs/<ds>/<run_id>/shards.json`` and ``plan.json``. Output: the carried fields (``bucket``,
``dataset``, ``source_key``, ``source_version``, ``lease_owner``), ``run_id``, ``shard_count``,
``shards_run``, ``modes``, ``shards_key``, ``plan_key``, ``results_prefix``, ``frequency``,
``horizon``, ``shard_concurrency`` and ``durations_ms`` (``take_lease``, ``plan``); or ``skipped``
with the reason (nothing changed, no validated data), the lease given back. The lease is kept for
the run: the Aggregate step gives it back.

``"step": "shard"`` (an item of the Distributed Map): renews the run's lease and builds the
shard's features (``features/<ds>/shard=<s:05d>/``, Parquet; :func:`steps.features.build_shard`).
Output: the item with ``features_key``, ``features_version``, ``manifest_key``, ``rows``,
``series``, ``date_range``, the mode decided (``mode``, ``reason``, ``since``) and
``durations_ms`` (``renew_lease``, ``read_validated``, ``build_features``, ``write_features``); or the
item with ``skipped`` when the shard has no rows.

Any other event (no ``step``, or another one) fails at once with ``UnknownStep``, one line naming the
steps it runs; nothing is read, written or leased. A manual rebuild is a run of the pipeline (the
upload event, with ``mode: retrain`` to retrain) or of the backfill state machine.
"""

from item_prediction.aws.runtime import COUNT, initialise, logger, metrics, settings, storage
from item_prediction.steps import features, plan
from item_prediction.steps.envelope import (
    NothingToDo,
    begin_shard,
    begin_step,
    carried,
    lease_given_back_on_error,
    skipped,
    step_of,
    take_lease,
)

initialise()  # clients made at init, outside the handler (item_prediction.aws.runtime.initialise)

STEPS = ("plan", "shard")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    step = step_of(event, "FeatureEngineering", STEPS)
    return _plan(event) if step == "plan" else _shard(event)


def _plan(event):
    """Take the dataset's lease and plan the run (kept until the Aggregate step gives it back)."""
    dataset = begin_step(event)
    if dataset is None:
        return skipped(event, event.get("reason", "skipped upstream"))
    owner, timer = take_lease(event, dataset)
    event = {**event, "dataset": dataset, "bucket": event.get("bucket") or storage().bucket, "lease_owner": owner}
    try:
        with lease_given_back_on_error(dataset, owner), timer("plan"):
            result = plan.plan(storage(), settings(), dataset, event)
    except NothingToDo as exc:
        durations = timer.publish()
        logger.info("nothing to run", extra={"reason": str(exc), "durations_ms": durations})
        return skipped(event, str(exc), durations)
    metrics.add_metric(name="ShardsPlanned", unit=COUNT, value=result["shards_run"])
    durations = timer.publish()
    logger.info(
        "planned", extra={**{k: result[k] for k in ("run_id", "shard_count", "shards_run", "modes")}, "durations_ms": durations}
    )
    concurrency = {"shard_concurrency": event.get("shard_concurrency", 0)}  # the Map's MaxConcurrencyPath
    return {**carried(event), **result, **concurrency, "durations_ms": durations}


def _shard(item):
    """One shard's features (an item of the Distributed Map); renews the run's lease first, so a
    long fan-out keeps it (DatasetBusy here means another run took it: the item fails)."""
    timer = begin_shard(item)
    try:
        result = features.build_shard(storage(), settings(), item, timer=timer)
    except NothingToDo as exc:
        durations = timer.publish()
        logger.warning("no features to build", extra={"reason": str(exc), "durations_ms": durations})
        return {**item, "skipped": True, "reason": str(exc), "durations_ms": durations}
    metrics.add_metric(name="FeatureRows", unit=COUNT, value=result["rows"])
    durations = timer.publish()
    logger.info("shard features built", extra={"rows": result["rows"], "mode": result["mode"], "durations_ms": durations})
    return {**result, "durations_ms": durations}
