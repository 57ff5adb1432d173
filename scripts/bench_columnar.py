#!/usr/bin/env python3
"""Intermediates side by side: the feature set as gzip CSV (what FeatureEngineering writes and
Predictions reads today) against Parquet through fastparquet (snappy, zstd): write time, read
time and bytes, medians of --repeats runs, and the ratios against gzip CSV.

The frame is the real feature set (item_prediction.domain.features.build_features) of generated
daily sales (lambda_build.sample_data, two years per series). Both sides write to and read from a
local temporary file, as the functions do before an upload and after a download; the CSV is read
the way steps/predict.py reads it (string ids, empty cells as missing, dates parsed).

Usage: .venv/bin/python scripts/bench_columnar.py [--rows 1000000] [--repeats 5] [--format json]
Measure on a quiet machine with OMP_NUM_THREADS=1; compare numbers only within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling"), str(ROOT / "functions")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

import pandas as pd  # noqa: E402
from item_prediction.aws import columnar  # noqa: E402
from item_prediction.aws.storage import CsvGzipWriter  # noqa: E402
from item_prediction.domain import features, schema  # noqa: E402
from lambda_build.sample_data import generate_sales  # noqa: E402

PERIODS = 730


def feature_set(rows: int) -> pd.DataFrame:
    """The feature set of about ``rows`` generated daily rows (two years per series, 20 stores)."""
    series = max(1, math.ceil(rows / PERIODS))
    stores = min(20, series)
    sample = generate_sales(items=math.ceil(series / stores), stores=stores, periods=PERIODS, invalid=False, gap_rate=0.01)
    clean = sample.frame.astype({schema.QUANTITY: "float64", schema.PRICE: "float64", schema.PROMOTION: "int8"})
    frame, _manifest = features.build_features(clean, "D")
    return frame


def csv_write(frame: pd.DataFrame, path: Path) -> None:
    writer = CsvGzipWriter()
    writer(frame)
    with writer.finish() as handle, open(path, "wb") as out:
        while chunk := handle.read(1 << 20):
            out.write(chunk)


def csv_read(path: Path) -> pd.DataFrame:
    dtypes = {schema.ITEM: "str", schema.STORE: "str"}
    frame = pd.read_csv(path, compression="gzip", dtype=dtypes, keep_default_na=False, na_values=[""])
    frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
    return frame


def parquet_codec(codec: str, dictionary: tuple[str, ...] = ()):
    def write(frame: pd.DataFrame, path: Path) -> None:
        with open(path, "wb") as handle:
            columnar.write_frame(frame, handle, compression=codec, dictionary=dictionary)

    def read(path: Path) -> pd.DataFrame:
        with open(path, "rb") as handle:
            return columnar.read_frame(handle)

    return write, read


def measure(frame: pd.DataFrame, write, read, repeats: int) -> dict:
    """Median write and read seconds over ``repeats`` runs, the file's bytes, and a round-trip check."""
    writes, reads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features"
        write(frame.head(1000), path)  # untimed warm-up: imports and first-call costs are not the format's
        read(path)
        for _ in range(repeats):
            started = time.perf_counter()
            write(frame, path)
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            back = read(path)
            reads.append(time.perf_counter() - started)
        size = path.stat().st_size
    same = back.shape == frame.shape and float(back[schema.QUANTITY].sum()) == float(frame[schema.QUANTITY].sum())
    same = same and all(back[name].astype(object).equals(frame[name].astype(object)) for name in (schema.ITEM, schema.STORE))
    write_s, read_s = statistics.median(writes), statistics.median(reads)
    return {
        "write_s": round(write_s, 3),
        "read_s": round(read_s, 3),
        "total_s": round(write_s + read_s, 3),
        "bytes": size,
        "round_trip": same,
    }


def run(rows: int, repeats: int) -> dict:
    started = time.perf_counter()
    frame = feature_set(rows)
    report = {
        "rows": len(frame),
        "columns": frame.shape[1],
        "repeats": repeats,
        "setup_s": round(time.perf_counter() - started, 1),
    }
    formats = {"csv_gzip": (csv_write, csv_read)} | {f"parquet_{c.lower()}": parquet_codec(c) for c in ("SNAPPY", "ZSTD")}
    # what the pipeline writes: snappy, the ids dictionary-encoded (columnar.dictionary_encoded)
    formats["parquet_snappy_dictionary_ids"] = parquet_codec("SNAPPY", (schema.ITEM, schema.STORE))
    results = {name: measure(frame, write, read, repeats) for name, (write, read) in formats.items()}
    base = results["csv_gzip"]
    for result in results.values():
        result["vs_csv_gzip"] = {key: round(base[key] / result[key], 2) for key in ("write_s", "read_s", "total_s", "bytes")}
    return report | {"formats": results}


def render(report: dict) -> str:
    lines = [
        f"feature set: {report['rows']:,} rows x {report['columns']} columns; median of {report['repeats']} runs",
        f"{'format':<30}{'write s':>10}{'read s':>10}{'write+read s':>14}{'bytes':>14}   vs gzip CSV (x faster / x smaller)",
    ]
    for name, result in report["formats"].items():
        ratio = result["vs_csv_gzip"]
        lines.append(
            f"{name:<30}{result['write_s']:>10.2f}{result['read_s']:>10.2f}{result['total_s']:>14.2f}{result['bytes']:>14,}"
            f"   write {ratio['write_s']}x, read {ratio['read_s']}x, both {ratio['total_s']}x, bytes {ratio['bytes']}x"
            + ("" if result["round_trip"] else "  ROUND TRIP DIFFERS")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of generated sales (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per format; medians are printed (default 5)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be at least 1")
    report = run(args.rows, args.repeats)
    print(json.dumps(report, indent=2) if args.format == "json" else render(report))
    return 0 if all(result["round_trip"] for result in report["formats"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
