#!/usr/bin/env python3
"""Scale benchmark: the whole pipeline offline on M5-shaped daily data at several sizes.

For each size it generates an M5-shaped daily export (lambda_build.m5_like: items x ten stores,
intermittent demand, weekly price steps, promotion days, staggered starts, rows in date order) and
runs the offline main job on it through the real runner (``./build.sh`` once, cached, then
``./deploy.sh --local --input FILE --dataset scale<ROWS> --skip-build --format json``: emulator,
template-created stack, the Step Functions runner, each function in the Lambda-like sandbox at its
template memory size). It prints per stage (function): invocations, peak memory per invocation
against its memory size, the sum of durations (compute), billed GB-seconds and the Lambda cost;
the Step Functions state transitions (counted from the runner's state events) and their cost; the
wall time; per-shard figures for invocations inside a Distributed Map; the same for the next
week's upload to the same dataset on the kept stack (``--weekly``, default); and, on paper from the
largest run, M5's full size and ten times it. In the same run, a minimal one-process pandas +
HistGradientBoosting pass over the 1 M file (read, validity checks, lags 1/7/14/28, rolling means
7/28, one fit of 100 iterations, predict) is the yardstick; our compute is given as a ratio to it.
The machine's load average is recorded before and after each run: shared cores inflate both.
``--repeats N`` runs the whole measurement N times (the same files) and adds each repeat's
compute, weekly upload and ratios, and their medians: these machines are noisy, quote medians.

Example: .venv/bin/python scripts/bench_scale.py --rows 1000000 --format json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "tooling")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build import m5_like  # noqa: E402
from lambda_build.offline.sandbox import compute_threads  # noqa: E402
from lambda_build.template import load_template  # noqa: E402

# Prices: US East (N. Virginia), on-demand, no free tier, as published on 2025-11 (the sources below).
# https://aws.amazon.com/lambda/pricing/ : x86_64, first 6 billion GB-seconds a month; duration billed per 1 ms.
LAMBDA_USD_PER_GB_SECOND = 0.0000166667
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
# The INIT phase of on-demand functions is billed like the duration since 2025-08-01
# (https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/).
# https://aws.amazon.com/step-functions/pricing/ : Standard workflows per state transition (retries count);
# a Distributed Map is charged one transition per child workflow execution it starts
# (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html); Express child
# workflows are charged per request and per GB-second of their duration (100 ms and 64 MB increments).
SFN_USD_PER_TRANSITION = 0.025 / 1_000
SFN_EXPRESS_USD_PER_REQUEST = 1.00 / 1_000_000
SFN_EXPRESS_USD_PER_GB_SECOND = 0.00001667
EXPRESS_MEMORY_MB = 64  # the smallest billing step; a child workflow passing small JSON stays in it
YARDSTICK_ROWS = 1_000_000  # the yardstick runs beside the size nearest to this
DEFINITION = ROOT / "statemachine" / "pipeline.asl.json"
STATE_LINE = re.compile(r"^==> state (\S+)")
RETRY_LINE = re.compile(r"^==>\s+retry \d+ of (\S+) after")


# ---- cost arithmetic --------------------------------------------------------------------------
def billed_gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Lambda's billed GB-seconds: the duration rounded up to the next 1 ms, times the memory size in GB."""
    return math.ceil(duration_ms) / 1000 * memory_mb / 1024


def billed_ms(call: dict) -> float:
    """An invocation's billed time: its duration, plus its init on a cold start (billed since 2025-08-01)."""
    return call["duration_ms"] + (call.get("init_ms") or 0.0)


def lambda_cost(gb_seconds: float, requests: int) -> float:
    return gb_seconds * LAMBDA_USD_PER_GB_SECOND + requests * LAMBDA_USD_PER_REQUEST


def express_cost(child_durations_ms: list[float]) -> float:
    """Express child workflows: per request, and each one's duration rounded up to 100 ms at 64 MB."""
    billed_s = sum(math.ceil(ms / 100) / 10 for ms in child_durations_ms)
    return (
        len(child_durations_ms) * SFN_EXPRESS_USD_PER_REQUEST
        + billed_s * EXPRESS_MEMORY_MB / 1024 * SFN_EXPRESS_USD_PER_GB_SECOND
    )


def stage_figures(invocations: list[dict]) -> list[dict]:
    """Per function, in the order first invoked: invocations, peak memory against its size, compute, cost."""
    stages: dict[str, list[dict]] = {}
    for call in invocations:
        stages.setdefault(call["function"], []).append(call)
    figures = []
    for function, calls in stages.items():
        size = max(call["memory_size_mb"] for call in calls)
        peak = max(call["max_memory_mb"] for call in calls)
        gb_s = sum(billed_gb_seconds(billed_ms(call), call["memory_size_mb"]) for call in calls)
        figures.append(
            {
                "function": function,
                "invocations": len(calls),
                "errors": sorted({(call.get("error") or {}).get("errorType") for call in calls} - {None}),
                "peak_mb": peak,
                "memory_size_mb": size,
                "peak_share": round(peak / size, 3),
                "compute_s": round(sum(call["duration_ms"] for call in calls) / 1000, 2),
                "init_s": round(sum(call.get("init_ms") or 0.0 for call in calls) / 1000, 2),
                "steps_s": step_seconds(calls),
                "gb_seconds": round(gb_s, 3),
                "lambda_usd": lambda_cost(gb_s, len(calls)),
            }
        )
    return figures


def step_seconds(calls: list[dict]) -> dict[str, float]:
    """Where a function's compute went: each logged step's durations summed over its invocations
    (the ``durations_ms`` the handlers report; issue 12.8), largest first."""
    totals: dict[str, float] = {}
    for call in calls:
        for step, ms in (call.get("durations_ms") or {}).items():
            totals[step] = totals.get(step, 0.0) + ms
    return {step: round(ms / 1000, 2) for step, ms in sorted(totals.items(), key=lambda pair: -pair[1])}


def shard_figures(invocations: list[dict]) -> list[dict]:
    """Per function run inside a Map (``shard`` set): shards, and duration and peak memory across them."""
    by_function: dict[str, list[dict]] = {}
    for call in invocations:
        if call.get("shard") is not None:
            by_function.setdefault(call["function"], []).append(call)
    figures = []
    for function, calls in by_function.items():
        seconds = [call["duration_ms"] / 1000 for call in calls]
        peaks = [call["max_memory_mb"] for call in calls]
        figures.append(
            {
                "function": function,
                "shards": len({call["shard"] for call in calls}),
                "invocations": len(calls),
                "seconds_median": round(statistics.median(seconds), 2),
                "seconds_max": round(max(seconds), 2),
                "peak_mb_median": statistics.median(peaks),
                "peak_mb_max": max(peaks),
                "memory_size_mb": max(call["memory_size_mb"] for call in calls),
            }
        )
    return figures


# ---- Step Functions transitions ----------------------------------------------------------------
def child_states(definition: dict) -> tuple[set[str], set[str], bool]:
    """States inside Distributed Maps' item processors, their start states, whether they run as EXPRESS."""
    inside, starts, express = set(), set(), False
    for state in definition["States"].values():
        processor = state.get("ItemProcessor") if state["Type"] == "Map" else None
        if processor and processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            inside |= set(processor["States"])
            starts.add(processor["StartAt"])
            express = express or processor["ProcessorConfig"].get("ExecutionType") == "EXPRESS"
            nested, nested_starts, nested_express = child_states(processor)
            inside, starts, express = inside | nested, starts | nested_starts, express or nested_express
    return inside, starts, express


def count_transitions(lines: list[str], definition: dict) -> dict:
    """Billable transitions from the runner's progress lines (``==> state X``, ``==>   retry n of X``).

    The parent (Standard) workflow's states entered and retried count; a Distributed Map's child
    workflow executions count one transition each; with EXPRESS children their own states are
    billed by duration instead, else each counts too."""
    inside, starts, express = child_states(definition)
    entered = [match.group(1) for line in lines if (match := STATE_LINE.match(line))]
    retried = [match.group(1) for line in lines if (match := RETRY_LINE.match(line))]
    children = sum(1 for name in entered if name in starts)
    parent = sum(1 for name in entered + retried if name not in inside)
    child_steps = sum(1 for name in entered + retried if name in inside)
    standard = parent + children + (0 if express else child_steps)
    return {"standard": standard, "child_executions": children, "express_children": express, "child_states": child_steps}


def child_durations(invocations: list[dict]) -> list[float]:
    """Each Map item's (shard's) time in its child workflow: the sum of its functions' durations."""
    per_shard: dict = {}
    for call in invocations:
        if call.get("shard") is not None:
            per_shard[call["shard"]] = per_shard.get(call["shard"], 0.0) + call["duration_ms"]
    return list(per_shard.values())


def workflow_cost(transitions: dict, invocations: list[dict]) -> float:
    cost = transitions["standard"] * SFN_USD_PER_TRANSITION
    return cost + (express_cost(child_durations(invocations)) if transitions["express_children"] else 0.0)


# ---- on paper: M5's full size and ten times it ---------------------------------------------------
M5_ROWS = 30_490 * 1_941  # M5's Walmart data: 30,490 item-store series x 1,941 days = 59,181,090 rows
VALIDATION = "DataValidationFunction"
ACCOUNT_CONCURRENCY = 1_000  # Lambda's default concurrent executions per account and region
VALIDATION_SECONDS = 720  # what one validation invocation is planned to take at most: 80% of Lambda's 900 s


def shard_count_for(rows: int) -> int:
    from item_prediction.domain.shards import shard_count_for as count  # the functions' own rule

    return count(rows)


def split_work(invocations: list[dict]) -> dict:
    """The run's work in three parts: validation, per shard (invocations inside a Map), the rest
    (plan, aggregate). Without Map invocations, features and predictions are one shard of all rows."""
    parts = {"validation": [], "shard": [], "other": []}
    for item in invocations:
        part = "shard" if item.get("shard") is not None else "validation" if item["function"] == VALIDATION else "other"
        parts[part].append(item)
    monolith = not parts["shard"]
    if monolith:
        parts["shard"], parts["other"] = parts["other"], []
    work = {
        name: {
            "invocations": len(calls),
            "compute_s": round(sum(c["duration_ms"] for c in calls) / 1000, 2),
            "gb_seconds": round(sum(billed_gb_seconds(billed_ms(c), c["memory_size_mb"]) for c in calls), 3),
        }
        for name, calls in parts.items()
    }
    work["shard"]["shards"] = 1 if monolith else len({c["shard"] for c in parts["shard"]})
    work["monolith"] = monolith
    return work


def project(size: dict, rows: int, concurrency: int) -> dict:
    """``rows`` rows on paper from this run's figures, linearly: shards, concurrency, wall time, compute, cost.

    Work per shard scales with the rows per shard (``shard_count_for``, the functions' rule); validation
    with the rows, the upload split into equal files of at most 720 s of validation each (80% of
    Lambda's 900 s; files validated in parallel);
    plan and aggregate stay as measured. Shards run in waves of ``concurrency``."""
    work, measured_rows = size["work"], size["input"]["rows"]
    validation, shard, other = work["validation"], work["shard"], work["other"]
    shards = shard_count_for(rows)
    scale = (rows / shards) / (measured_rows / shard["shards"])  # rows per shard: projected over measured
    shard_s = shard["compute_s"] / shard["shards"] * scale
    per_row_s = validation["compute_s"] / measured_rows
    files = math.ceil(rows * per_row_s / VALIDATION_SECONDS) or 1
    file_rows, running = math.ceil(rows / files), min(concurrency, shards)
    gb_s = (
        validation["gb_seconds"] * rows / measured_rows
        + other["gb_seconds"]
        + shard["gb_seconds"] / shard["shards"] * scale * shards
    )
    requests = files + other["invocations"] + math.ceil(shard["invocations"] / shard["shards"] * shards)
    workflow = _projected_workflow(size["transitions"], files, shards, shard_s)
    return {
        "rows": rows,
        "basis": "today's monolith as one shard" if work["monolith"] else "per-shard figures",
        "shards": shards,
        "rows_per_shard": round(rows / shards),
        "concurrency": running,
        "validation_files": files,
        "shard_s": round(shard_s, 1),
        "wall_s": round(file_rows * per_row_s + other["compute_s"] + math.ceil(shards / running) * shard_s, 1),
        "compute_s": round(per_row_s * rows + other["compute_s"] + shard_s * shards, 1),
        "gb_seconds": round(gb_s, 1),
        "cost_usd": round(lambda_cost(gb_s, requests) + workflow, 4),
    }


def _projected_workflow(transitions: dict, files: int, shards: int, shard_s: float) -> float:
    """Step Functions $ of ``files`` executions over ``shards`` shards, from a run's transitions: the
    parent's own per file; per shard, its child execution's start and, for STANDARD children, each of
    its states (EXPRESS children are billed by duration instead)."""
    children, express = transitions["child_executions"], transitions.get("express_children", True)
    child_steps = 0 if express else transitions.get("child_states", 0)
    parent = transitions["standard"] - children - child_steps
    per_child = 1 + (child_steps / children if children else 0)
    cost = (files * parent + shards * per_child) * SFN_USD_PER_TRANSITION
    return cost + (express_cost([shard_s * 1000] * shards) if express else 0.0)


# ---- running ----------------------------------------------------------------------------------
def load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2), "cpus": os.cpu_count()}


def main_job_command(path: Path, dataset: str, concurrency: int | None, *, keep: bool = False) -> list[str]:
    """The offline main job on ``path``; ``--concurrency`` only where the runner takes it; ``keep``
    leaves the stack up for a later upload to the same dataset."""
    command = [str(ROOT / "deploy.sh"), "--local", "--input", str(path), "--dataset", dataset, "--skip-build", "--format", "json"]
    if concurrency is not None and runner_takes("--concurrency"):
        command += ["--concurrency", str(concurrency)]
    return command + (["--keep-running"] if keep else [])


def stop_kept_stack() -> None:
    subprocess.run([str(ROOT / "deploy.sh"), "--local", "--stop"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def runner_takes(option: str) -> bool:
    from lambda_build import local

    return option in local.build_parser()._option_string_actions


def run_main_job(command: list[str]) -> dict:
    """Run the main job; its JSON summary, progress lines (shown as they come), wall times."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    first_state: list[float] = []

    def drain() -> None:
        for line in process.stderr:
            if not first_state and STATE_LINE.match(line):
                first_state.append(time.perf_counter())
            lines.append(line.rstrip("\n"))
            print(f"    {line}", end="", file=sys.stderr, flush=True)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout = process.stdout.read()
    process.wait()
    reader.join()
    ended = time.perf_counter()
    try:
        summary = json.loads(stdout)
    except ValueError:
        summary = {"failure": {"error": f"exit {process.returncode}", "cause": "\n".join(lines[-5:])}, "invocations": []}
    return {
        "summary": summary,
        "lines": lines,
        "exit_code": process.returncode,
        "wall_s": round(ended - started, 2),
        "pipeline_wall_s": round(ended - (first_state or [started])[0], 2),
    }


YARDSTICK = """
import json, sys, time
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
path, horizon, marks = sys.argv[1], 14, {}
started = time.perf_counter()
frame = pd.read_csv(path, dtype={"item_id": "category", "store_id": "category"}, parse_dates=["date"])
marks["read"] = time.perf_counter()
bad = frame[["date", "item_id", "quantity"]].isna().any(axis=1) | (frame["quantity"] < 0)
bad |= frame.duplicated(["item_id", "store_id", "date"], keep="last") | (frame["unit_price"] <= 0)
frame = frame[~bad].sort_values(["item_id", "store_id", "date"], kind="stable")
marks["checks"] = time.perf_counter()
keys = [frame["item_id"], frame["store_id"]]
grouped = frame.groupby(keys, observed=True)["quantity"]
for lag in (1, 7, 14, 28):
    frame[f"lag_{lag}"] = grouped.shift(lag)
for window in (7, 28):
    frame[f"mean_{window}"] = frame.groupby(keys, observed=True)["lag_1"].transform(lambda s: s.rolling(window).mean())
frame["day_of_week"] = frame["date"].dt.dayofweek
frame["store"] = frame["store_id"].cat.codes
columns = [c for c in frame if c.startswith(("lag_", "mean_"))] + ["day_of_week", "store", "unit_price", "promotion"]
marks["features"] = time.perf_counter()
cut = frame["date"].max() - pd.Timedelta(days=horizon)
train, test = frame[frame["date"] <= cut].dropna(subset=["lag_28"]), frame[frame["date"] > cut]
model = HistGradientBoostingRegressor(max_iter=100, early_stopping=False, random_state=0)
model.fit(train[columns], train["quantity"])
marks["fit"] = time.perf_counter()
error = (model.predict(test[columns]) - test["quantity"]).abs().mean()
marks["predict"] = time.perf_counter()
peak = next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
steps, last = {}, started
for name, mark in marks.items():
    steps[name], last = round(mark - last, 2), mark
print(json.dumps({"seconds": round(last - started, 2), "steps": steps, "rows": len(frame), "train_rows": len(train),
                  "backtest_mae": round(float(error), 4), "peak_mb": peak}))
"""


def yardstick(path: Path, threads: int | None = None) -> dict:
    """The minimal one-process pass over ``path`` in a fresh interpreter (imports not timed), with
    ``threads`` OpenMP threads (None: as many as the machine's cores, OpenMP's default)."""
    env = (
        {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if threads
        else {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    )
    completed = subprocess.run([sys.executable, "-c", YARDSTICK, str(path)], capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip()[-2000:]}
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "threads": threads or os.cpu_count()}


def generate(rows: int, args: argparse.Namespace, work: Path, name: str, window: range | None) -> dict:
    """Write ``window`` of the ``rows``-row data set (all of it by default) to ``work/name``."""
    path = work / f"{name}.csv{'.gz' if args.gzip else ''}"
    started = time.perf_counter()
    data = {**m5_like.write_csv(path, m5_like.shape_for(rows, days=args.days), seed=args.seed, window=window), "path": str(path)}
    data["generate_s"] = round(time.perf_counter() - started, 2)
    print(f"==> {path.name}: {data['rows']:,} rows, {data['days']} days, generated in {data['generate_s']} s", file=sys.stderr)
    return data


def figures(run: dict) -> dict:
    """One main job's figures: per stage, per shard, compute, GB-seconds, transitions, cost, wall."""
    summary, invocations = run["summary"], run["summary"].get("invocations") or []
    transitions = count_transitions(run["lines"], json.loads(DEFINITION.read_text()))
    stages = stage_figures(invocations)
    lambda_usd = sum(stage["lambda_usd"] for stage in stages)
    workflow_usd = workflow_cost(transitions, invocations)
    return {
        "exit_code": run["exit_code"],
        "failure": summary.get("failure"),
        "rows_in": (summary.get("validation") or {}).get("rows_in"),
        "stages": stages,
        "shards": shard_figures(invocations),
        "work": split_work(invocations),
        "compute_s": round(sum(stage["compute_s"] for stage in stages), 2),
        "gb_seconds": round(sum(stage["gb_seconds"] for stage in stages), 3),
        "transitions": transitions,
        "cost_usd": {"lambda": lambda_usd, "step_functions": workflow_usd, "total": lambda_usd + workflow_usd},
        "wall_s": run["wall_s"],
        "pipeline_wall_s": run["pipeline_wall_s"],
    }


def bench_size(rows: int, args: argparse.Namespace, work: Path) -> dict:
    """The full history of about ``rows`` rows through the main job; with ``--weekly``, then its next
    week uploaded to the same dataset on the kept stack (the history is all but the last 7 days)."""
    days = args.days
    history = generate(rows, args, work, f"m5like_{rows}", range(days - 7) if args.weekly else None)
    before = load()
    try:
        full = run_main_job(main_job_command(Path(history["path"]), f"scale{rows}", args.concurrency, keep=args.weekly))
        size = {"rows_asked": rows, "input": history, **figures(full), "load_before": before, "load_after": load()}
        if args.weekly and not size["failure"]:
            week = generate(rows, args, work, f"m5like_{rows}_week", range(days - 7, days))
            upload = run_main_job(main_job_command(Path(week["path"]), f"scale{rows}", args.concurrency, keep=True))
            size["weekly"] = {"input": week, **figures(upload), "load_after": load()}
    finally:
        if args.weekly:
            stop_kept_stack()
    return size


def compare(sizes: list[dict], stick: dict | None) -> dict:
    """Ratios in this run: compute against the yardstick on the same file, and growth against the first size."""
    ratios: dict = {}
    if stick and "seconds" in stick:
        same = next((size for size in sizes if size["input"]["path"] == stick["path"]), None)
        if same and same["compute_s"]:
            ratios["compute_vs_yardstick"] = round(same["compute_s"] / stick["seconds"], 2)
            cores = stick.get("all_cores") or {}
            if "seconds" in cores:
                ratios["compute_vs_yardstick_all_cores"] = round(same["compute_s"] / cores["seconds"], 2)
    for size in sizes:
        if size.get("weekly") and size["compute_s"] and not size["weekly"]["failure"]:
            ratios[f"weekly_upload_{size['rows_asked']}_vs_full"] = round(size["weekly"]["compute_s"] / size["compute_s"], 3)
    first = sizes[0] if sizes else None
    for size in sizes[1:]:
        if first["compute_s"] and not size["failure"] and not first["failure"]:
            rows = size["input"]["rows"] / first["input"]["rows"]
            ratios[f"compute_{size['rows_asked']}_vs_{first['rows_asked']}"] = {
                "rows": round(rows, 2),
                "compute": round(size["compute_s"] / first["compute_s"], 2),
            }
    return ratios


# ---- output -----------------------------------------------------------------------------------
def render_size(size: dict) -> list[str]:
    data = size["input"]
    lines = [
        "",
        f"== {size['rows_asked']:,} rows asked: {data['rows']:,} rows, {data['series']:,} series "
        f"({data['items']:,} items x {data['stores']} stores, {data['days']:,} days), {data['zero_share']:.0%} zero days, "
        f"{data['bytes']:,} bytes, generated in {data['generate_s']} s",
    ]
    if size["failure"]:
        lines.append(
            f"   FAILED in {size['failure'].get('state')}: {size['failure'].get('error')}: {size['failure'].get('cause')}"
        )
    lines.append(
        f"   {'function':<28}{'inv':>5}{'peak MB':>9}{'size MB':>9}{'peak %':>8}{'compute s':>11}{'GB-s':>10}{'Lambda $':>11}"
    )
    for stage in size["stages"]:
        errors = f"  {', '.join(stage['errors'])}" if stage["errors"] else ""
        lines.append(
            f"   {stage['function']:<28}{stage['invocations']:>5}{stage['peak_mb']:>9,}{stage['memory_size_mb']:>9,}"
            f"{stage['peak_share']:>8.0%}{stage['compute_s']:>11,.1f}{stage['gb_seconds']:>10,.1f}{stage['lambda_usd']:>11.5f}{errors}"
        )
        if stage.get("steps_s"):
            lines.append("      steps: " + ", ".join(f"{step} {seconds:,.1f} s" for step, seconds in stage["steps_s"].items()))
    t, cost = size["transitions"], size["cost_usd"]
    lines.append(
        f"   {'total':<28}{sum(s['invocations'] for s in size['stages']):>5}{'':>26}{size['compute_s']:>11,.1f}"
        f"{size['gb_seconds']:>10,.1f}{cost['lambda']:>11.5f}"
    )
    children = f" + {t['child_executions']} child executions ({'EXPRESS' if t['express_children'] else 'STANDARD'})"
    lines.append(
        f"   Step Functions: {t['standard']} billed state transitions{children if t['child_executions'] else ''}: "
        f"${cost['step_functions']:.5f}; run total ${cost['total']:.5f}"
    )
    lines.append(
        f"   wall: {size['pipeline_wall_s']:,.1f} s from the first state to the end; {size['wall_s']:,.1f} s with the "
        f"emulator, stack and upload; load {size['load_before']['load_1m']} before, {size['load_after']['load_1m']} after"
    )
    lines += render_shards(size["shards"])
    return lines + render_weekly(size.get("weekly"), size["compute_s"])


def render_weekly(weekly: dict | None, full_compute_s: float) -> list[str]:
    if not weekly:
        return []
    share = f" ({weekly['compute_s'] / full_compute_s:.0%} of the full run's)" if full_compute_s else ""
    lines = [
        f"   next week uploaded to the same dataset: {weekly['input']['rows']:,} rows, compute {weekly['compute_s']:,.1f} s"
        f"{share}, ${weekly['cost_usd']['total']:.5f}, wall {weekly['pipeline_wall_s']:,.1f} s"
    ]
    if weekly["failure"]:
        lines.append(f"   FAILED in {weekly['failure'].get('state')}: {weekly['failure'].get('error')}")
    for stage in weekly["stages"]:
        lines.append(f"     {stage['function']} {stage['invocations']} x, {stage['compute_s']:,.1f} s")
        if stage.get("steps_s"):
            lines.append("       steps: " + ", ".join(f"{step} {seconds:,.2f} s" for step, seconds in stage["steps_s"].items()))
    return lines


def render_shards(shards: list[dict]) -> list[str]:
    if not shards:
        return ["   per shard: no invocation ran inside a Map (one invocation per stage)"]
    lines = [f"   {'per shard':<28}{'shards':>7}{'median s':>10}{'max s':>8}{'median MB':>11}{'max MB':>8}{'size MB':>9}"]
    for item in shards:
        lines.append(
            f"   {item['function']:<28}{item['shards']:>7}{item['seconds_median']:>10.1f}{item['seconds_max']:>8.1f}"
            f"{item['peak_mb_median']:>11,.0f}{item['peak_mb_max']:>8,}{item['memory_size_mb']:>9,}"
        )
    return lines


def render(report: dict) -> str:
    lines = [f"environment: {report['environment']}"]
    for size in report["sizes"]:
        lines += render_size(size)
    stick = report.get("yardstick")
    if stick and "seconds" in stick:
        steps = ", ".join(f"{name} {seconds}" for name, seconds in stick["steps"].items())
        lines += [
            "",
            f"yardstick (pandas + HistGradientBoosting, one process, {Path(stick['path']).name}, "
            f"{stick['threads']} thread(s) as our environments): "
            f"{stick['seconds']} s ({steps}), peak {stick['peak_mb']:,} MB, backtest MAE {stick['backtest_mae']}",
        ]
        cores = stick.get("all_cores") or {}
        if "seconds" in cores:
            lines.append(f"yardstick on all {cores['threads']} cores: {cores['seconds']} s")
    elif stick:
        lines += ["", f"yardstick FAILED: {stick['error']}"]
    lines += [f"ratio {name}: {value}" for name, value in report["ratios"].items()]
    lines += render_repeats(report.get("repeats") or [], report.get("medians"))
    lines += render_projections(report.get("projections") or [])
    return "\n".join(lines)


def render_repeats(repeats: list[dict], middle: dict | None) -> list[str]:
    """One line per repeat and the medians: compute per size, weekly share, the yardstick ratio."""
    if not repeats:
        return []
    lines = ["", f"{len(repeats)} repeats (the sizes above are the first):"]
    for number, repeat in enumerate([*repeats, middle], start=1):
        label = "median" if number > len(repeats) else f"repeat {number}"
        compute = ", ".join(f"{int(rows):,} rows {seconds:,.2f} s" for rows, seconds in repeat["compute_s"].items())
        ratios = ", ".join(f"{name} {value}" for name, value in repeat["ratios"].items())
        lines.append(f"   {label:<9} compute {compute}; yardstick {repeat['yardstick_s']} s; {ratios}")
    return lines


def projections(sizes: list[dict], concurrency: int) -> list[dict]:
    """M5's full size and ten times it, from the largest size that ran through."""
    done = [size for size in sizes if not size["failure"] and size["work"]["shard"]["invocations"]]
    if not done:
        return []
    basis = max(done, key=lambda size: size["input"]["rows"])
    return [{**project(basis, rows, concurrency), "from_rows": basis["input"]["rows"]} for rows in (M5_ROWS, 10 * M5_ROWS)]


def render_projections(items: list[dict]) -> list[str]:
    if not items:
        return []
    lines = ["", f"on paper, from the {items[0]['from_rows']:,}-row run ({items[0]['basis']}):"]
    lines.append(
        f"   {'rows':>13}{'shards':>8}{'rows/shard':>12}{'concurrency':>13}{'per shard s':>13}{'wall s':>10}"
        f"{'compute s':>12}{'GB-s':>11}{'cost $':>10}"
    )
    for item in items:
        sizes = f"{item['rows']:>13,}{item['shards']:>8,}{item['rows_per_shard']:>12,}{item['concurrency']:>13,}"
        times = f"{item['shard_s']:>13,.1f}{item['wall_s']:>10,.0f}{item['compute_s']:>12,.0f}"
        lines.append(f"   {sizes}{times}{item['gb_seconds']:>11,.0f}{item['cost_usd']:>10.2f}")
    return lines


def parse_rows(text: str) -> list[int]:
    try:
        rows = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows {text!r}: a comma-separated list of row counts, e.g. 1000000,3000000") from None
    if not rows or min(rows) < 1_000:
        raise argparse.ArgumentTypeError(f"--rows {text!r}: every size must be at least 1,000 rows")
    return rows


def repeat_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise argparse.ArgumentTypeError(f"--repeats {text!r}: a whole number from 1 to 20")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        type=parse_rows,
        default=parse_rows("1000000,3000000,10000000"),
        help="comma-separated sizes in rows (default 1000000,3000000,10000000)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="Distributed Map concurrency where the runner takes --concurrency (else its default, the CPU count); "
        f"also the on-paper projection's (default {ACCOUNT_CONCURRENCY:,}, Lambda's account default)",
    )
    parser.add_argument(
        "--days", type=int, default=m5_like.DEFAULT_DAYS, help=f"days of history (default {m5_like.DEFAULT_DAYS})"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gzip", action=argparse.BooleanOptionalAction, default=True, help="upload .csv.gz (default) or plain CSV"
    )
    parser.add_argument("--no-yardstick", dest="yardstick", action="store_false", help="skip the one-process yardstick")
    parser.add_argument(
        "--weekly",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="then upload the next week to the same dataset on the kept stack and measure it (default on)",
    )
    parser.add_argument(
        "--repeats",
        type=repeat_count,
        default=1,
        help="run the whole measurement this many times and add the medians (default 1); the sizes shown are the first's",
    )
    parser.add_argument("--skip-build", action="store_true", help="use what is built (else ./build.sh first, cached)")
    parser.add_argument("--keep-files", action="store_true", help="keep the generated files (their folder is printed)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "concurrency_option": runner_takes("--concurrency"),
        **load(),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report: dict = {"environment": environment(), "sizes": [], "yardstick": None}
    if not args.skip_build:
        print("==> building (cached): ./build.sh", file=sys.stderr)
        if subprocess.run([str(ROOT / "build.sh")], stdout=subprocess.DEVNULL).returncode != 0:
            print("error: the build failed (run ./build.sh to see why)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        runs = []
        for repeat in range(args.repeats):
            if args.repeats > 1:
                print(f"==> repeat {repeat + 1} of {args.repeats}", file=sys.stderr)
            runs.append(measure(args, work))
    finally:
        if args.keep_files:
            print(f"==> generated files kept in {work}", file=sys.stderr)
        else:
            for path in work.iterdir():
                path.unlink()
            work.rmdir()
    report.update(runs[0])
    report["projections"] = projections(report["sizes"], args.concurrency or ACCOUNT_CONCURRENCY)
    if args.repeats > 1:
        report["repeats"] = [repeat_figures(run) for run in runs]
        report["medians"] = medians(report["repeats"])
    print(json.dumps(report, indent=2, default=str) if args.format == "json" else render(report))
    return 0 if all(size["exit_code"] == 0 for run in runs for size in run["sizes"]) else 1


def measure(args: argparse.Namespace, work: Path) -> dict:
    """One measurement: every size (with its weekly upload), the yardstick beside the size nearest
    1 M rows, and the ratios of this run."""
    sizes, stick = [], None
    beside = min(args.rows, key=lambda rows: abs(rows - YARDSTICK_ROWS))  # the yardstick runs on this size's file
    for rows in args.rows:
        sizes.append(bench_size(rows, args, work))
        if args.yardstick and rows == beside and stick is None:
            print("==> yardstick: pandas + HistGradientBoosting in one process", file=sys.stderr)
            path, before = Path(sizes[-1]["input"]["path"]), load()
            # The functions' threads (the local runner gives each environment its whole vCPUs,
            # one at Predictions' 3,008 MB): work against work. The all-cores pass beside it.
            memory = load_template()["Parameters"]["PredictionsMemorySize"]["Default"]
            stick = {**yardstick(path, compute_threads(int(memory))), "path": str(path), "load_before": before}
            stick["all_cores"] = yardstick(path)
    return {"sizes": sizes, "yardstick": stick, "ratios": compare(sizes, stick)}


def repeat_figures(run: dict) -> dict:
    """What one repeat adds to the medians: compute and weekly compute per size, the yardstick, the ratios."""
    return {
        "compute_s": {str(size["rows_asked"]): size["compute_s"] for size in run["sizes"]},
        "weekly_compute_s": {str(size["rows_asked"]): size["weekly"]["compute_s"] for size in run["sizes"] if size.get("weekly")},
        "yardstick_s": (run["yardstick"] or {}).get("seconds"),
        "ratios": {name: value for name, value in run["ratios"].items() if not isinstance(value, dict)},
    }


def medians(repeats: list[dict]) -> dict:
    """The median of each figure over the repeats that have it."""

    def median_of(values: list) -> float | None:
        present = [value for value in values if value is not None]
        return round(statistics.median(present), 3) if present else None

    result: dict = {}
    for field in ("compute_s", "weekly_compute_s", "ratios"):
        names = {name for repeat in repeats for name in repeat[field]}
        result[field] = {name: median_of([repeat[field].get(name) for repeat in repeats]) for name in sorted(names)}
    result["yardstick_s"] = median_of([repeat["yardstick_s"] for repeat in repeats])
    return result


if __name__ == "__main__":
    sys.exit(main())
