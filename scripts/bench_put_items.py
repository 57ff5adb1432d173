#!/usr/bin/env python3
"""Storage.put_items against the local emulator (a moto server started here, stopped at the end),
side by side with the path it replaced:

* ``put_items``: :meth:`item_prediction.aws.storage.Storage.put_items` (what the pipeline uses):
  batches of 25 in DynamoDB's wire form, ``storage.WRITERS`` BatchWriteItem requests at a time;
* ``batch_writer``: the resource's ``Table.batch_writer`` of ``storage._decimals`` items (the former
  put_items): one BatchWriteItem of 25 at a time.

Both write the same series items (14-day forecasts with quantiles, as steps.predict makes them) to
their own table; the tables are scanned and compared. Medians of --repeats runs (a run overwrites
the items of the one before). The emulator answers in ~1 ms on localhost where DynamoDB takes
~10-30 ms: --latency-ms adds that wait to every request (before it is sent) to show the network-
bound case; with 0 the times are the client's and the emulator's work on a shared machine.

Usage: .venv/bin/python scripts/bench_put_items.py [--items 390 3100] [--repeats 5] [--latency-ms 0] [--format json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling"), str(ROOT / "functions")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

import boto3  # noqa: E402
import pandas as pd  # noqa: E402
from item_prediction.aws import storage  # noqa: E402
from item_prediction.steps import predict  # noqa: E402
from lambda_build.offline.emulator import Emulator  # noqa: E402


def series_items(count: int) -> list[dict]:
    """``count`` series items of a 14-day forecast with quantiles, as steps.predict writes them."""
    dates = pd.date_range("2024-03-01", periods=14)
    rows = [(f"ITEM-{i:05d}", "STORE-01", day, 1.2345 + i % 7, 0.5, 1.2345 + i % 7, 2.5) for i in range(count) for day in dates]
    frame = pd.DataFrame(rows, columns=["item_id", "store_id", "date", "prediction", "p10", "p50", "p90"])
    return predict.prediction_items(frame, "v1", "bench", "run-1", 2_000_000_000)


def former_put_items(table, items: list[dict]) -> int:
    """The former put_items: the resource's batch writer, one BatchWriteItem of 25 at a time."""
    with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for item in items:
            batch.put_item(Item=storage._decimals(item))
    return len(items)


def create_table(name: str) -> None:
    keys = [("pk", "HASH"), ("sk", "RANGE")]
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
    )


def scan(name: str) -> list[dict]:
    table, found, page = boto3.resource("dynamodb").Table(name), [], {}
    while True:
        answer = table.scan(ConsistentRead=True, **page)
        found += answer["Items"]
        if "LastEvaluatedKey" not in answer:
            return sorted(found, key=lambda item: item["pk"])
        page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def add_latency(client, seconds: float) -> None:
    """Every BatchWriteItem of ``client`` waits ``seconds`` before it is sent (a network round trip)."""
    if seconds > 0:
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", lambda **_: time.sleep(seconds))


def measure(count: int, repeats: int, latency: float) -> dict:
    items = series_items(count)
    tables = {name: f"bench-{name}-{count}" for name in ("put_items", "batch_writer")}
    for name in tables.values():
        create_table(name)
    target = storage.Storage("unused", tables["put_items"])
    former = boto3.resource("dynamodb").Table(tables["batch_writer"])
    add_latency(target.dynamodb_client, latency)
    add_latency(former.meta.client, latency)
    paths = {"put_items": lambda: target.put_items(items), "batch_writer": lambda: former_put_items(former, items)}
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, write in paths.items():
            start = time.perf_counter()
            assert write() == count
            runs[name].append(round((time.perf_counter() - start) * 1000, 1))
    landed = {name: scan(table) for name, table in tables.items()}
    medians = {name: round(statistics.median(times), 1) for name, times in runs.items()}
    return {
        "items": count,
        "same_items": landed["put_items"] == landed["batch_writer"] and len(landed["put_items"]) == count,
        "median_ms": medians,
        "runs_ms": runs,
        "speedup": round(medians["batch_writer"] / medians["put_items"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[390, 3100], help="item counts to write (default 390 3100)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per path and count (default 5)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait added to each request (default 0)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    if min(args.items) < 1 or args.repeats < 1 or args.latency_ms < 0:
        parser.error("--items and --repeats must be at least 1, --latency-ms at least 0")
    with tempfile.TemporaryDirectory(prefix="bench-put-items-") as state:
        emulator = Emulator(Path(state))  # a server of our own, never a kept one
        emulator.start()
        try:
            os.environ.update(emulator.environ())
            results = [measure(count, args.repeats, args.latency_ms / 1000) for count in args.items]
        finally:
            emulator.stop()
    report = {"writers": storage.WRITERS, "latency_ms": args.latency_ms, "repeats": args.repeats, "results": results}
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for result in results:
            medians = result["median_ms"]
            print(
                f"{result['items']:>6} items: put_items {medians['put_items']} ms, batch_writer {medians['batch_writer']} ms "
                f"(x{result['speedup']}), same items: {result['same_items']}"
            )
    return 0 if all(result["same_items"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
