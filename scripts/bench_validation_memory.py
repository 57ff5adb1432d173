#!/usr/bin/env python3
"""Measure DataValidation's memory and time on big uploads: peak resident set and seconds per file size.

For each ``--rows`` a daily sales export is generated (series x days, rows ordered by date as
exports come, one negative quantity in a thousand so quarantine works too; vectorised, written in
chunks), then validated in a fresh process as the function does it apart from S3: the file
streams through the rules in chunks, clean rows go to per-shard local Parquet parts (written
under one shard while streaming, split once at the end into the upload's own shard count),
quarantined rows to gzip CSV. Peak memory is the validating process's high-water resident set
(VmHWM), the number the function's memory size must cover; it includes the interpreter, pandas,
numpy and fastparquet. ``keyset_mb`` is what the duplicate-key set holds at the end (8 bytes per
distinct clean key: the one structure that grows with the file). ``cpu_seconds`` (user + system
of the validating process) is the figure to scale by Lambda's CPU share (1,769 MB = one vCPU), as
wall seconds on a shared machine vary with its load.

Example: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_validation_memory.py --rows 3000000 10000000 --format json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tooling"))

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

GENERATE = """
import csv, json, sys, time
import numpy as np, pandas as pd
rows, days, path, quoting = {rows}, {days}, {path!r}, {quoting}
series = max(1, -(-rows // days))
stores = min(10, series)
items = np.array([f"ITEM_{{i:05d}}" for i in range(-(-series // stores))], dtype=object)
item_of = np.repeat(items, stores)[:series]
store_of = np.tile(np.array([f"STORE_{{s:02d}}" for s in range(stores)], dtype=object), len(items))[:series]
rng = np.random.default_rng(0)
level = rng.gamma(1.5, 3.0, series)
price = np.round(rng.uniform(0.5, 20.0, series), 2)
start, written, day = time.perf_counter(), 0, 0
dates = pd.date_range("2020-01-01", periods=days, freq="D").strftime("%Y-%m-%d").to_numpy()
with open(path, "w", newline="") as handle:
    header = ["date", "item_id", "store_id", "quantity", "unit_price", "promotion"]
    handle.write(",".join(f'"{{name}}"' if quoting == csv.QUOTE_ALL else name for name in header) + "\\n")
    while written < rows:
        block = min(max(1, 200_000 // series), days - day)
        take = min(rows - written, block * series)
        quantity = rng.poisson(np.tile(level, block)[:take]).astype(np.int64)
        quantity[rng.random(take) < 0.001] = -1
        frame = pd.DataFrame({{
            "date": np.repeat(dates[day:day + block], series)[:take],
            "item_id": np.tile(item_of, block)[:take], "store_id": np.tile(store_of, block)[:take],
            "quantity": quantity, "unit_price": np.tile(price, block)[:take],
            "promotion": (rng.random(take) < 0.05).astype(np.int8),
        }})
        frame.to_csv(handle, header=False, index=False, lineterminator="\\n", quoting=quoting)
        written, day = written + take, day + block
print(json.dumps({{"rows": written, "series": series, "days": day, "seconds": round(time.perf_counter() - start, 1)}}))
"""

VALIDATE = """
import datetime, json, os, resource, sys, tempfile, time
sys.path.insert(0, {functions!r})
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import shards, validation
from item_prediction.domain.schema import ColumnMapping
from item_prediction.steps import shard_store

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)

baseline = peak_mb()
started = time.perf_counter()
with tempfile.TemporaryDirectory() as directory:
    clean, quarantined = shard_store.ShardSink(1, directory), CsvGzipWriter(escape_formulas=True)
    with open({path!r}, "rb") as handle:
        report = validation.validate(handle, ColumnMapping.identity(), clean_sink=clean, quarantine_sink=quarantined,
                                     today=datetime.date(2100, 1, 1))
    validated = time.perf_counter()
    count = shards.shard_count_for(clean.rows)
    written = clean.finish(count)
    quarantined.finish().close()
    parts_bytes = sum(os.path.getsize(writer.path) for writer in written.values())
print(json.dumps({{
    "rows_in": report["rows_in"], "rows_clean": report["rows_clean"], "rows_quarantined": report["rows_quarantined"],
    "series": report["series"], "shard_count": count, "parts_mb": round(parts_bytes / 2**20, 1),
    "keyset_mb": round(report["rows_clean"] * 8 / 2**20, 1), "baseline_mb": baseline, "peak_mb": peak_mb(),
    "validate_seconds": round(validated - started, 1), "split_seconds": round(time.perf_counter() - validated, 1),
    "seconds": round(time.perf_counter() - started, 1),
    "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
}}))
"""


def run_python(code: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


QUOTING = {"minimal": 0, "all": 1}  # csv.QUOTE_MINIMAL (fields quoted only when they must be), csv.QUOTE_ALL


def measure(rows: int, days: int, quoting: str = "minimal") -> dict:
    """Generate one file of ``rows`` rows (every field quoted with ``quoting="all"``, as many
    database exports write them) and validate it in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "input.csv")
        print(f"==> generating {rows:,} rows", file=sys.stderr)
        data = run_python(GENERATE.format(rows=rows, days=days, path=path, quoting=QUOTING[quoting]))
        data["bytes"] = Path(path).stat().st_size
        print(f"==> validating {rows:,} rows ({data['bytes']:,} bytes)", file=sys.stderr)
        return {"input": data, "validation": run_python(VALIDATE.format(functions=str(ROOT / "functions"), path=path))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[3_000_000, 10_000_000], help="file sizes in rows")
    parser.add_argument("--days", type=int, default=1_000, help="days of history per series (default 1,000)")
    parser.add_argument("--quoting", choices=tuple(QUOTING), default="minimal", help="quote every field (all) or none (default)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if min(args.rows) < 1 or args.days < 1:
        parser.error("--rows and --days must be positive")
    try:
        results = [measure(rows, args.days, args.quoting) for rows in args.rows]
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"python": sys.version.split()[0], "quoting": args.quoting, "runs": results}, indent=2))
        return 0
    print(f"{'rows':>12}{'MB in':>7}{'series':>8}{'shards':>7}{'seconds':>9}{'CPU s':>8}", end="")
    print(f"{'peak MB':>9}{'base MB':>9}{'keyset MB':>10}")
    for run in results:
        data, item = run["input"], run["validation"]
        print(
            f"{item['rows_in']:>12,}{data['bytes'] / 2**20:>7.0f}{data['series']:>8,}{item['shard_count']:>7}"
            f"{item['seconds']:>9.1f}{item['cpu_seconds']:>8.1f}{item['peak_mb']:>9.1f}{item['baseline_mb']:>9.1f}{item['keyset_mb']:>10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
