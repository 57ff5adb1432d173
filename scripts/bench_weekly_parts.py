#!/usr/bin/env python3
"""A dataset that grows by a file a week, against the local emulator (a moto server started here,
stopped at the end): what a predict run's FeatureEngineering shard and Plan read, side by side
with the way they read before.

One shard of the 3 M-row M5-shaped data (``lambda_build.m5_like``, about 390 series): a history
upload, then ``--weeks`` weekly files, each validated as DataValidation does; the shard's model is
trained on everything but the last week (storing its prior), then the last week is read as a
predict run reads it (``steps.features._load_for``):

* ``every part``: each of the shard's parts downloaded one after the other, rows before the window
  dropped (before);
* ``window parts``: the parts whose rows end before the window are not downloaded (the Plan's
  ``part_ends``, from the upload catalog) and the next parts download while one is read
  (``shard_store.PREFETCH_PARTS``); what the pipeline does now.

The rows read must be identical. A training run reads every part (the whole history): it is timed
one part after the other and with the downloads ahead. The emulator answers in about a millisecond
where S3 takes 10-30 ms: ``--latency-ms`` adds that wait to every GET. It also counts the index
reads of two Plans in a row: every index each time (before) against the catalog's (all of them
once, then only the new one).

Usage: .venv/bin/python scripts/bench_weekly_parts.py [--weeks 1 52] [--repeats 5] [--rows 3000000]
       [--latency-ms 0] [--format json]
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
from item_prediction.aws.runtime import StepTimer  # noqa: E402
from item_prediction.aws.settings import Settings  # noqa: E402
from item_prediction.aws.storage import ObjectRef, Storage  # noqa: E402
from item_prediction.domain import schema, shards  # noqa: E402
from item_prediction.steps import features, plan, shard_store, upload_catalog, validate  # noqa: E402
from lambda_build import m5_like  # noqa: E402
from lambda_build.offline.emulator import Emulator  # noqa: E402

SHARD = {"shard": 0, "shard_count": 1, "frequency": "D", "horizon": 14, "known_in_advance": ["unit_price", "promotion"]}


def one_shard(rows: int) -> pd.DataFrame:
    """Shard 0 of 8 of the ``rows``-row M5-shaped data: what one shard of such a dataset holds."""
    shape = m5_like.shape_for(rows)
    data = pd.concat([m5_like.to_frame(shape, chunk) for shape, chunk in m5_like.iter_chunks(shape)], ignore_index=True)
    return data[shards.shard_of(data[schema.ITEM], data[schema.STORE], 8) == 0].reset_index(drop=True)


def upload(storage: Storage, settings: Settings, key: str, frame: pd.DataFrame) -> None:
    storage.put_bytes(key, frame.to_csv(index=False).encode(), "text/csv")
    validate.validate_object(storage, settings, ObjectRef(storage.bucket, key))


def index_reads(storage: Storage, plan_once) -> int:
    """How many upload indexes ``plan_once()`` reads."""
    read, original = [], storage.get_json
    storage.get_json = lambda key: (read.append(key) if "/_parts/" in key else None) or original(key)
    try:
        plan_once()
    finally:
        storage.get_json = original
    return len(read)


def timed_reads(storage: Storage, settings: Settings, item: dict, repeats: int, ahead: int) -> dict:
    """The run's read of the shard (``features._load_for``) with ``ahead`` parts downloading at
    once: median ms, GETs, the rows."""
    shard_store.PREFETCH_PARTS = ahead
    gets: list[int] = []
    storage.s3.meta.events.register("before-call.s3.GetObject", lambda **_: gets.append(1))
    times, rows = [], None
    for _ in range(repeats):
        gets.clear()
        start = time.perf_counter()
        rows, _inputs, decided, _prior = features._load_for(storage, settings, item, StepTimer())
        times.append((time.perf_counter() - start) * 1000)
    assert decided["mode"] == item["mode"], decided
    return {"median_ms": round(statistics.median(times), 1), "gets": len(gets), "rows": rows}


def measure(data: pd.DataFrame, weeks: int, repeats: int, latency: float = 0.0) -> dict:
    """History, then ``weeks`` weekly files (the model trained before the last), read as a predict run."""
    bucket = f"bench-weekly-{weeks}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    storage, settings = Storage(bucket, "unused"), Settings(bucket, "unused")
    if latency > 0:  # a network round trip, before each GET is sent
        storage.s3.meta.events.register("before-send.s3.GetObject", lambda **_: time.sleep(latency))
    days = sorted(data[schema.DATE].unique())
    cut = len(days) - 7 * weeks
    upload(storage, settings, "raw/retail/history.csv", data[data[schema.DATE] < days[cut]])
    for week in range(weeks):
        if week == weeks - 1:
            trained = features.build_shard(
                storage, settings, {**SHARD, "dataset": "retail", "mode": "train_and_predict", "run_id": "r1"}
            )
            first_plan = index_reads(storage, lambda: upload_catalog.upload_catalog(storage, settings, "retail"))
        span = data[schema.DATE].isin(days[cut + 7 * week : cut + 7 * week + 7])
        upload(storage, settings, f"raw/retail/week{week:03d}.csv", data[span])
        print(f"    {weeks} weeks: uploaded week {week + 1}", file=sys.stderr, flush=True)
    indexes = weeks + 1
    catalog_reads = index_reads(storage, lambda: upload_catalog.upload_catalog(storage, settings, "retail"))
    uploads = upload_catalog.upload_catalog(storage, settings, "retail")
    item = {**SHARD, "dataset": "retail", "mode": "predict", "run_id": "r2", "data_end": trained["date_range"][1]}
    ends = shard_store.part_ends(plan.listed_parts(storage, settings, "retail"), uploads["indexes"])
    ahead = shard_store.PREFETCH_PARTS
    every = timed_reads(storage, settings, item, repeats, 1)
    window = timed_reads(storage, settings, {**item, "part_ends": ends}, repeats, ahead)
    train = {**item, "mode": "train_and_predict", "data_end": None}
    whole = [timed_reads(storage, settings, train, repeats, n) for n in (1, ahead)]
    shard_store.PREFETCH_PARTS = ahead
    return {
        "weeks": weeks,
        "parts": indexes,
        "rows_read": len(window["rows"]),
        "same_rows": every["rows"].equals(window["rows"]),
        "every_part": {key: every[key] for key in ("median_ms", "gets")},
        "window_parts": {key: window[key] for key in ("median_ms", "gets")},
        "speedup": round(every["median_ms"] / window["median_ms"], 2),
        "same_training_rows": whole[0]["rows"].equals(whole[1]["rows"]),
        "training_read_ms": {"one_by_one": whole[0]["median_ms"], "ahead": whole[1]["median_ms"]},
        "training_speedup": round(whole[0]["median_ms"] / whole[1]["median_ms"], 2),
        "plan_index_reads": {"every_index": [indexes - 1, indexes], "catalog": [first_plan, catalog_reads]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, nargs="+", default=[1, 52], help="weekly files after the history (default 1 52)")
    parser.add_argument("--repeats", type=int, default=5, help="reads per path (default 5)")
    parser.add_argument("--rows", type=int, default=3_000_000, help="the dataset's size; one shard of 8 is used (default 3 M)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait added to each GET (default 0)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    if min(args.weeks) < 1 or args.repeats < 1 or max(args.weeks) > 150 or args.rows < 100_000 or args.latency_ms < 0:
        parser.error(
            "--weeks must be 1 to 150 (a year stays history), --repeats at least 1, --rows at least 100000, "
            "--latency-ms at least 0"
        )
    print(f"==> generating one shard of the {args.rows:,}-row M5-shaped data", file=sys.stderr, flush=True)
    data = one_shard(args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-weekly-parts-") as state:
        emulator = Emulator(Path(state))  # a server of our own, never a kept one
        emulator.start()
        try:
            os.environ.update(emulator.environ())
            results = [measure(data, weeks, args.repeats, args.latency_ms / 1000) for weeks in args.weeks]
        finally:
            emulator.stop()
    if args.format == "json":
        print(json.dumps({"repeats": args.repeats, "latency_ms": args.latency_ms, "results": results}, indent=2))
    else:
        for r in results:
            every, window, plans = r["every_part"], r["window_parts"], r["plan_index_reads"]
            print(
                f"{r['weeks']:>4} weekly files ({r['parts']} parts): predict read every part {every['median_ms']} ms "
                f"({every['gets']} GETs), window parts {window['median_ms']} ms ({window['gets']} GETs), "
                f"x{r['speedup']}, same rows: {r['same_rows']}; Plan index reads, two runs: every index "
                f"{plans['every_index']}, catalog {plans['catalog']}; training read one by one "
                f"{r['training_read_ms']['one_by_one']} ms, ahead {r['training_read_ms']['ahead']} ms (x{r['training_speedup']})"
            )
    return 0 if all(r["same_rows"] and r["same_training_rows"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
