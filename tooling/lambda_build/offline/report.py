"""The main job's summary as text: what ran, what failed and where its record is, what to run next."""

from __future__ import annotations

import json
import shlex

EXIT_OK, EXIT_FAILED, EXIT_ARGUMENTS, EXIT_REFUSED = 0, 1, 2, 3


def error_message(cause: str) -> str:
    """A Lambda error's message from Step Functions' Cause (the error as JSON), else the cause."""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause


def exit_code(summary: dict) -> int:
    """1 the pipeline failed; 3 the file was refused (quarantined whole, or skipped by validation)."""
    if summary.get("failure"):
        return EXIT_FAILED
    validated = summary.get("steps", {}).get("DataValidationFunction") or {}
    if (summary.get("validation") or {}).get("file_reason") or validated.get("skipped"):
        return EXIT_REFUSED
    return EXIT_OK


def query_command(summary: dict) -> str | None:
    """The command that asks the read API for a series this run predicted (None: nothing predicted)."""
    if not summary.get("predictions"):
        return None
    first = summary["predictions"][0]
    words = ["./deploy.sh", "--local", "--query", first["item_id"], "--store", first["store_id"], "--dataset", summary["dataset"]]
    return " ".join(shlex.quote(word) for word in words)


def _items(result: dict) -> str:
    """How many DynamoDB items held them (one per series), when the result says."""
    return f"as {result['items_written']:,} DynamoDB items " if "items_written" in result else ""


def _failure(failure: dict) -> list[str]:
    lines = [f"PIPELINE FAILED in {failure['state']}: {failure['error']}: {failure['cause']}"]
    letter = failure.get("dead_letter")
    if letter:
        lines.append(f"  input and error: dead-letter message {letter['message_id']} in {letter['queue']}")
    if failure.get("log_group"):
        lines.append(f"  the function's log: {failure['log_group']}")
    if failure.get("state_machine_log_group"):
        lines.append(f"  the execution's log: {failure['state_machine_log_group']}")
    return lines


def _validation(summary: dict) -> list[str]:
    v = summary.get("validation")
    if not v:
        return []
    rules = (
        ", ".join(f"{rule} {count}" for rule, count in sorted((v.get("rules") or {}).items(), key=lambda item: -item[1]))
        or "none"
    )
    lines = [
        "",
        f"Validation: {v['rows_in']:,} rows in, {v['rows_clean']:,} clean, {v['rows_quarantined']:,} quarantined ({rules})",
    ]
    if v.get("file_reason"):
        lines.append(f"  the whole file was quarantined: {v['file_reason']}: {v.get('file_detail') or ''}".rstrip(": "))
    if v.get("rows_quarantined"):
        where = (
            f"s3://{summary['bucket']}/{v['quarantine_key']}"
            if v.get("quarantine_key")
            else f"s3://{summary['bucket']}/quarantine/..."
        )
        lines.append(f"  each quarantined row and its reasons: {where}; report: s3://{summary['bucket']}/{v['report_key']}")
    return lines


PLAN_NONE = "none (assumed the last price and no promotion)"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _result(summary: dict) -> list[str]:
    result, lines = summary.get("result") or {}, []
    if result.get("skipped"):
        lines.append(f"Nothing to predict: {result.get('reason', 'skipped')}")
    if result.get("metrics"):
        m = result["metrics"]
        improvement = "n/a" if m["mae_improvement"] is None else f"{m['mae_improvement']:.1%}"
        verdict = f"beats it by {improvement} on MAE" if m["beats_baseline"] else f"does NOT beat it (MAE {improvement})"
        shards = f" ({result['shards_run']} of {result['shard_count']} shard(s) run now)" if "shard_count" in result else ""
        model, naive = m["model"], m["seasonal_naive"]
        lines += [
            f"Backtest{shards} over the last {m['horizon']} periods: model MAE {_number(model['mae'])}, "
            f"WAPE {_number(model['wape'])}; seasonal naive MAE {_number(naive['mae'])}, WAPE {_number(naive['wape'])}: "
            f"the model {verdict}; P10-P90 coverage {_number(model.get('coverage_p10_p90'))}",
            *([f"Plan: {result.get('plan_key') or PLAN_NONE}"] if "plan" in result else []),
            f"Predictions: {result['predictions_written']:,} written for {result['series']} series x {result['horizon']} periods "
            f"{_items(result)}(model {result['model_version']})",
        ]
    if summary.get("predictions"):
        lines.append(f"  {'item_id':<12}{'store_id':<12}{'date':<12}{'prediction':>11}")
        lines += [
            f"  {r['item_id']:<12}{r['store_id']:<12}{r['date']:<12}{r['prediction']:>11.2f}" for r in summary["predictions"][:8]
        ]
    return lines


def slowest_steps(durations: dict | None, count: int = 3) -> str:
    """An invocation's ``count`` longest steps, longest first: ``fit 3,400 · backtest 2,900``."""
    ranked = sorted((durations or {}).items(), key=lambda item: -item[1])[:count]
    return " · ".join(f"{step} {value:,.0f}" for step, value in ranked)


def _tables(summary: dict) -> list[str]:
    lines = ["", f"{'function':<28}{'shard':>6}{'init ms':>10}{'duration ms':>13}{'max MB':>8}  slowest steps (ms)"]
    for item in summary["invocations"]:
        init = f"{item['init_ms']:.0f}" if item["init_ms"] else "-"
        shard = "-" if item.get("shard") is None else str(item["shard"])
        steps = slowest_steps(item.get("durations_ms"))
        row = f"{item['function']:<28}{shard:>6}{init:>10}{item['duration_ms']:>13,.0f}{item['max_memory_mb']:>8}"
        lines.append(f"{row}  {steps}" if steps else row)
    lines += ["", f"{'function + layers':<28}{'bytes':>16}{'limit':>16}{'headroom':>10}"]
    for item in summary["sizes"]:
        lines.append(f"{item['function']:<28}{item['total_bytes']:>16,}{item['limit_bytes']:>16,}{item['headroom_percent']:>9}%")
    return lines


def _hints(summary: dict) -> list[str]:
    query = summary.get("query")
    if not summary.get("kept"):
        return [
            "",
            "Query and logs need the emulator: rerun with --keep-running, then ./deploy.sh --local --query ITEM or --logs",
        ]
    first = (summary.get("predictions") or [None])[0]
    path = f"   (GET /datasets/{summary['dataset']}/predictions/{first['item_id']}?store={first['store_id']})" if first else ""
    return [
        "",
        f"Query: {query}{path}" if query else "Query: no series was predicted in this run",
        "Logs:  ./deploy.sh --local --logs   (one function: add --name PredictionsFunction)",
        "Stop:  ./deploy.sh --local --stop   (the emulator and stack stay up for the next ./deploy.sh --local until then)",
    ]


def _report(summary: dict) -> list[str]:
    """With --report: where the forecast report was written, last (the line to click)."""
    if "report_file" not in summary:
        return []
    path = summary["report_file"]
    return ["", f"Report: {path}" if path else "Report: none written (this run made no forecast)"]


def render(summary: dict) -> str:
    lines = _failure(summary["failure"]) if summary.get("failure") else []
    lines += _validation(summary) + _result(summary) + _tables(summary) + _hints(summary) + _report(summary)
    return "\n".join(lines)
