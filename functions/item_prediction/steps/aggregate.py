"""The Aggregate step (Predictions, ``"step": "aggregate"``): one dataset-level result from the shards.

After the Distributed Map it reads the ResultWriter's manifest and SUCCEEDED files (each shard's
small result), then, under the dataset's lease:

1. the dataset's shard table: each shard run now takes its new entry (forecast, model, backtest
   ``sums``; a shard predicted with its latest model keeps the sums of that model's backtest),
   every other shard keeps its entry from the previous ``models/<ds>/latest.json`` (a shard that
   has no rows any more, or too little history, has none);
2. exact dataset metrics from the additive sums (:func:`combine`): MAE = sum |error| / count,
   WAPE = sum |error| / sum actual, for the model and the seasonal-naive baseline;
3. writes the generation's pointer ``GEN#<run_id>`` / ``SHARD#<s>`` for every shard with a
   forecast (with ``expires_at``, the TTL rule of the predictions it names: :func:`pointer_expiry`),
   then ``models/<ds>/latest.json`` (dataset level), the forecast report's page
   ``reports/<ds>/<run_id>/report.html`` (merged from the report slices the shards' Predict wrote:
   each entry of the shard table records its ``report_slice``, so an untouched shard contributes the
   slice of the run that last ran it), the run report ``reports/<ds>/runs/<run_id>.json`` and
   ``validated/<ds>/_dataset.json`` (shard count, rows, signatures: what the next Plan compares
   with), and last flips CURRENT to the generation (with ``report_key``, the page).

A failure before the flip leaves the previous generation on display; the next run re-runs the
shards (their signatures were not recorded).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from ..aws import table_keys
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain.plan import PLAN_ASSUMED, PLAN_FILE
from . import report as reporting
from .plan import dataset_manifest_key

SUM_FIELDS = ("abs_error", "naive_abs_error", "actual", "count")


def _score(error: float, actual: float, count: int) -> dict:
    return {"mae": round(error / count, 6) if count else None, "wape": round(error / actual, 6) if actual else None}


def combine(sums: list[dict], horizon: int | None = None) -> dict:
    """Dataset metrics from shards' backtest ``sums``, exactly what one backtest over all their
    held-out rows would report (same keys as ``model.backtest``'s scores)."""
    total = {name: sum(part[name] for part in sums) for name in SUM_FIELDS}
    if all("inside_p10_p90" in part for part in sums):  # every shard's interval was calibrated
        total["inside_p10_p90"] = sum(part["inside_p10_p90"] for part in sums)
    coverage = round(total["inside_p10_p90"] / total["count"], 4) if "inside_p10_p90" in total and total["count"] else None
    model_scores = {**_score(total["abs_error"], total["actual"], total["count"]), "coverage_p10_p90": coverage}
    naive = _score(total["naive_abs_error"], total["actual"], total["count"])
    ratio = model_scores["mae"] / naive["mae"] if model_scores["mae"] is not None and naive["mae"] else None
    return {
        "horizon": horizon,
        "holdout_rows": total["count"],
        "shards": len(sums),
        "model": model_scores,
        "seasonal_naive": naive,
        "mae_improvement": round(1 - ratio, 4) if ratio is not None else None,
        "mae_ratio": round(ratio, 4) if ratio is not None else None,
        "beats_baseline": bool(ratio is not None and ratio < 1),
        "coverage_p10_p90": coverage,
        "sums": total,
    }


def read_results(storage: Storage, manifest_key: str) -> list[dict]:
    """Each SUCCEEDED child's output, from the ResultWriter's manifest and files."""
    manifest = storage.get_json(manifest_key)
    outputs = []
    for entry in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        outputs += [json.loads(child["Output"]) for child in json.loads(storage.get_bytes(entry["Key"]))]
    return outputs


ENTRY_FIELDS = (
    "forecast_id",
    "model_version",
    "model_key",
    "series",
    "predictions_written",
    "forecast_range",
    "data_end",
    "run_id",
    "report_slice",
)


def shard_table(previous: dict, plan: dict, results: list[dict]) -> dict[str, dict]:
    """``"<s:05d>"`` -> entry for every shard with a forecast after this run (see the module)."""
    table = dict(previous.get("shards", {})) if previous.get("shard_count") == plan["shard_count"] else {}
    for shard in plan["shards"]:
        table.pop(f"{int(shard):05d}", None)  # re-run: its old entry goes, whatever the outcome
    for result in results:
        if result.get("skipped"):
            continue
        name = f"{result['shard']:05d}"
        kept = (previous.get("shards", {}).get(name) or {}).get("sums")
        entry = {field: result.get(field) for field in ENTRY_FIELDS}
        table[name] = {**entry, "mode": result["mode"], "sums": result.get("sums") or kept}
    return dict(sorted(table.items()))


def plan_used(results: list[dict]) -> dict:
    """What this run's forecasts assumed of the future: ``plan`` "file" (with ``plan_key``, the file
    the shards read; the last by key should a plan arrive mid-run) when a shard read a plan file,
    else "assumed_last_price_no_promotion"."""
    keys = sorted(r["plan_key"] for r in results if not r.get("skipped") and r.get("plan") == PLAN_FILE and r.get("plan_key"))
    return {"plan": PLAN_FILE, "plan_key": keys[-1]} if keys else {"plan": PLAN_ASSUMED, "plan_key": None}


def _skipped(results: list[dict]) -> list[dict]:
    return [{"shard": r.get("shard"), "reason": r.get("reason")} for r in results if r.get("skipped")]


def _versions(table: dict[str, dict], run_id: str) -> str:
    """The model version on display: the one version when every shard has it, else how many shard models."""
    versions = {entry.get("model_version") for entry in table.values()}
    return versions.pop() if len(versions) == 1 else f"{len(table)} shard models, generation {run_id}"


def _page(storage: Storage, settings: Settings, plan: dict, table: dict[str, dict], summary: dict) -> str | None:
    """The forecast report's page from the slices of the generation's shards (largest first)."""
    entries = sorted(table.values(), key=lambda entry: -(entry.get("series") or 0))
    return reporting.publish_run_report(
        storage,
        settings,
        {
            **summary,
            "forecast_id": plan["run_id"],
            "model_version": _versions(table, plan["run_id"]),
            "frequency": plan["frequency"],
            "horizon": plan["horizon"],
            "series": sum(entry.get("series") or 0 for entry in table.values()),
            "metrics": summary["metrics"] or {},
        },
        [entry["report_slice"] for entry in entries if entry.get("report_slice")],
    )


def pointer_expiry(entry: dict, now: datetime) -> dict:
    """``{"expires_at": ...}`` for a generation pointer: the TTL rule of the predictions it names
    (:func:`table_keys.expires_at` of their last date), counted from today, so it outlives them and
    a superseded generation's pointers go with its items; ``{}`` without a forecast range."""
    if not entry.get("forecast_range"):
        return {}
    return {"expires_at": table_keys.expires_at(date.fromisoformat(entry["forecast_range"][1]), now.date())}


def aggregate(storage: Storage, settings: Settings, event: dict, *, now: datetime | None = None) -> dict:
    """Combine the run's shard results and publish the generation (see the module)."""
    now = now or datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")
    dataset, plan = event["dataset"], storage.get_json(event["plan_key"])
    run_id, count = plan["run_id"], plan["shard_count"]
    results = read_results(storage, event["shards"]["ResultWriterDetails"]["Key"])
    latest_key = f"{settings.models_prefix}{dataset}/latest.json"
    previous = storage.get_json_if_any(latest_key, {})
    table = shard_table(previous, plan, results)
    sums = [entry["sums"] for entry in table.values() if entry.get("sums")]
    metrics = combine(sums, plan["horizon"]) if sums else None
    ranges = [entry["forecast_range"] for entry in table.values() if entry.get("forecast_range")]
    forecast_range = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
    storage.put_items(
        {
            **table_keys.shard_pointer_key(dataset, run_id, int(name)),
            "shard": int(name),
            "shard_count": count,
            "dataset": dataset,
            **{k: entry[k] for k in ("forecast_id", "model_version", "forecast_range")},
            **pointer_expiry(entry, now),
        }
        for name, entry in table.items()
    )
    summary = {"dataset": dataset, "run_id": run_id, "generation": run_id, "shard_count": count, "metrics": metrics}
    summary.update(plan_used(results))
    storage.put_json(latest_key, {**summary, "shards": table, "updated_at": stamp})
    page_key = _page(storage, settings, plan, table, {**summary, "generated_at": stamp})
    ran = [r for r in results if not r.get("skipped")]
    report = {
        **summary,
        "report_key": page_key,
        "previous_shard_count": plan.get("previous_shard_count"),
        "previous_generation": plan.get("previous_generation"),
        "shards_planned": plan["shards"],
        "shards_run": [
            {k: r.get(k) for k in ("shard", "mode", "reason", "series", "predictions_written", "items_written")} for r in ran
        ],
        "shards_skipped": _skipped(results),
        "predictions_written": sum(r["predictions_written"] for r in ran),  # forecast rows
        "items_written": sum(r["items_written"] for r in ran),  # DynamoDB items: one per series
        "series": sum(entry.get("series") or 0 for entry in table.values()),
        "forecast_range": forecast_range,
        "planned_at": plan.get("planned_at"),
        "aggregated_at": stamp,
    }
    run_report_key = storage.put_json(f"{settings.reports_prefix}{dataset}/runs/{run_id}.json", report)
    storage.put_json(
        dataset_manifest_key(settings, dataset),
        {
            "shard_count": count,
            "shard_rows": plan["shard_rows"],
            "frequency": plan["frequency"],
            "known_in_advance": plan.get("known_in_advance") or [],
            "signatures": plan["signatures"],
            "generation": run_id,
            "updated_at": stamp,
        },
    )
    pointer = {"generation": run_id, "shard_count": count, "horizon": plan["horizon"], "forecast_range": forecast_range}
    pointer |= {"report_key": page_key} if page_key else {}
    storage.put_item({**table_keys.current_key(dataset), **pointer, "dataset": dataset, "updated_at": stamp})  # the flip, last
    return {
        **{k: report[k] for k in ("dataset", "run_id", "generation", "shard_count", "metrics", "series")},
        **{k: report[k] for k in ("predictions_written", "items_written")},
        **{k: report[k] for k in ("plan", "plan_key")},
        "shards_run": len(ran),
        "shards_skipped": len(report["shards_skipped"]),
        "horizon": plan["horizon"],
        "forecast_range": forecast_range,
        "model_key": latest_key,
        "model_version": _versions(table, run_id),
        "report_key": page_key,
        "run_report_key": run_report_key,
    }
