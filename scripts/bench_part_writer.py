#!/usr/bin/env python3
"""Parquet part writers side by side on validation's many-shard case: --chunks chunks, each appending
--rows rows to every one of --shards shard files (one row group per append), then each file finished.

* ``footer_once``: :class:`item_prediction.aws.columnar.PartWriter` (what the pipeline uses): each
  append adds a row group to the local file, the footer is written once at the end;
* ``reread_footer``: fastparquet's own ``write(path, frame, append=True)`` (what the former
  ``columnar.PartWriter`` did): each append re-reads the file's footer and rewrites it.

Both write the same canonical validated rows (schema.CANONICAL_COLUMNS with their part dtypes,
snappy) to local temporary files; the files are read back and compared. Medians of --repeats runs.

Usage: .venv/bin/python scripts/bench_part_writer.py [--shards 64] [--chunks 20] [--rows 500] [--repeats 3] [--format json]
Measure with OMP_NUM_THREADS=1; compare the ratio, not the seconds, on a shared machine.
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from item_prediction.aws import columnar  # noqa: E402
from item_prediction.steps import shard_store  # noqa: E402


def chunk(index: int, rows: int) -> pd.DataFrame:
    """``rows`` canonical validated rows (distinct per ``index``), as a shard's part stores them."""
    day = np.arange(rows) + index * rows
    frame = pd.DataFrame(
        {
            "date": (pd.Timestamp("2020-01-01") + pd.to_timedelta(day % 1500, unit="D")).strftime("%Y-%m-%d"),
            "item_id": [f"ITEM-{value:05d}" for value in day % 997],
            "quantity": (day % 13).astype("float64"),
            "store_id": [f"STORE-{value:02d}" for value in day % 10],
            "unit_price": np.where(day % 7 == 0, np.nan, 1.5 + day % 5),
            "promotion": (day % 2).astype("int8"),
        }
    )
    return shard_store.canonical(frame)


class RereadFooter:
    """fastparquet's own append: each call re-reads the footer and rewrites it."""

    def __init__(self, path: str) -> None:
        self.path, self.started = path, False

    def append(self, frame: pd.DataFrame) -> None:
        columnar.engine().write(self.path, frame, compression=columnar.COMPRESSION, write_index=False, append=self.started)
        self.started = True

    def finish(self) -> str:
        return self.path


WRITERS = {"footer_once": columnar.PartWriter, "reread_footer": RereadFooter}


def run(make, chunks: list[pd.DataFrame], shards: int) -> tuple[float, list[pd.DataFrame]]:
    """Seconds to append every chunk to every shard and finish the files; the first file read back."""
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as folder:
        writers = [make(os.path.join(folder, f"s{shard}.parquet")) for shard in range(shards)]
        start = time.perf_counter()
        for frame in chunks:
            for writer in writers:
                writer.append(frame)
        for writer in writers:
            writer.finish()
        seconds = time.perf_counter() - start
        with open(writers[0].path, "rb") as handle:
            return seconds, list(columnar.iter_row_groups(handle))


def measure(shards: int, chunk_count: int, rows: int, repeats: int) -> dict:
    chunks = [chunk(index, rows) for index in range(chunk_count)]
    expected = pd.concat(chunks, ignore_index=True)
    results = {}
    for make in WRITERS.values():
        run(make, chunks[:2], 2)  # warm-up: imports and first-call costs are not the writers'
    for name, make in WRITERS.items():
        times = []
        for _ in range(repeats):
            seconds, groups = run(make, chunks, shards)
            times.append(seconds)
        back = shard_store.canonical(pd.concat(groups, ignore_index=True))
        results[name] = {
            "seconds": round(statistics.median(times), 4),
            "row_groups": len(groups),
            "round_trip": bool(back.equals(expected)),
        }
    base = results["footer_once"]["seconds"]
    for result in results.values():
        result["vs_footer_once"] = round(result["seconds"] / base, 2)
    appends = shards * chunk_count
    sizes = {"shards": shards, "chunks": chunk_count, "rows_per_append": rows, "appends": appends}
    return {**sizes, "repeats": repeats, "writers": results}


def text(report: dict) -> str:
    lines = [
        f"{report['shards']} shards x {report['chunks']} chunks of {report['rows_per_append']} rows "
        f"({report['appends']} appends), median of {report['repeats']}",
        f"{'writer':<14} {'seconds':>9} {'per append':>11} {'row groups':>11} {'vs footer_once':>15}",
    ]
    for name, result in report["writers"].items():
        per_append = result["seconds"] / report["appends"] * 1000
        ratio = result["vs_footer_once"]
        lines.append(f"{name:<14} {result['seconds']:>9.3f} {per_append:>8.2f} ms {result['row_groups']:>11} {ratio:>14.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=64, help="shard files written at once (default 64)")
    parser.add_argument("--chunks", type=int, default=20, help="chunks appended to every shard (default 20)")
    parser.add_argument("--rows", type=int, default=500, help="rows per append (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per writer; the median is reported (default 3)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if min(args.shards, args.chunks, args.rows, args.repeats) < 1:
        parser.error("--shards, --chunks, --rows and --repeats must be at least 1")
    report = measure(args.shards, args.chunks, args.rows, args.repeats)
    print(json.dumps(report, indent=2) if args.format == "json" else text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
