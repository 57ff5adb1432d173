#!/usr/bin/env python3
"""Benchmark the pipeline's stages on generated data: seconds and peak memory per stage.

Each stage runs in a fresh process, as in Lambda, and does what its function does apart from
the S3 and DynamoDB calls: validation streams the raw CSV into gzip CSVs of clean and
quarantined rows and a report; features reads the clean rows and writes the feature set as gzip
CSV with its manifest; prediction reads the feature set, trains with its backtest, forecasts
every series and writes the predictions as gzip CSV. Peak memory is the stage process's high-water
resident set (VmHWM, fresh after exec; ru_maxrss would carry the parent's size over from fork), the
number that Lambda's memory setting must cover. The data is generated in a process of its own.

Example: .venv/bin/python scripts/bench_pipeline.py --rows 1000000 --format json
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

STAGES = {
    "validation": """
import datetime, json
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import validation
from item_prediction.domain.schema import ColumnMapping
clean, quarantined = CsvGzipWriter(), CsvGzipWriter()
with open(work / "input.csv", "rb") as handle:
    report = validation.validate(handle, ColumnMapping.identity(), clean_sink=clean, quarantine_sink=quarantined,
                                 today=datetime.date(2100, 1, 1))
for writer, name in ((clean, "clean.csv.gz"), (quarantined, "quarantine.csv.gz")):
    with writer.finish() as handle:
        (work / name).write_bytes(handle.read())
(work / "report.json").write_text(json.dumps(report))
facts = {"rows_in": report["rows_in"], "clean": report["rows_clean"], "quarantined": report["rows_quarantined"],
         "frequency": report["frequency"]}
""",
    "features": """
import json
import pandas as pd
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import features, schema
dtypes = {schema.ITEM: "str", schema.STORE: "str", schema.DATE: "str", schema.QUANTITY: "float64"}
dtypes |= {schema.PRICE: "float64", schema.PROMOTION: "int8"}
clean = pd.read_csv(
    work / "clean.csv.gz", usecols=list(schema.CANONICAL_COLUMNS), dtype=dtypes,
    keep_default_na=False, na_values={schema.PRICE: [""]},
)
frequency = json.loads((work / "report.json").read_text())["frequency"]
frame, manifest = features.build_features(clean, frequency)
writer = CsvGzipWriter()
writer(frame)
with writer.finish() as handle:
    (work / "features.csv.gz").write_bytes(handle.read())
(work / "manifest.json").write_text(json.dumps(manifest))
facts = {"rows": manifest["rows"], "series": manifest["series"], "features": len(manifest["features"])}
""",
    "prediction": """
import json, time
import pandas as pd
from item_prediction.aws.storage import CsvGzipWriter
from item_prediction.domain import schema
from item_prediction.ml import model
frame = pd.read_csv(
    work / "features.csv.gz", dtype={schema.ITEM: "str", schema.STORE: "str"}, keep_default_na=False, na_values=[""]
)
frame[schema.DATE] = pd.to_datetime(frame[schema.DATE])
manifest = json.loads((work / "manifest.json").read_text())
split = time.perf_counter()
bundle = model.train(frame, manifest, HORIZON)
trained = time.perf_counter()
forecast = model.forecast(bundle, frame, HORIZON)
writer = CsvGzipWriter()
writer(forecast)
writer.finish().close()
metrics = bundle.metadata["metrics"]
facts = {"train_and_backtest_seconds": round(trained - split, 2), "forecast_seconds": round(time.perf_counter() - trained, 2),
         "predictions": len(forecast), "model_bytes": len(bundle.dumps()), "model_mae": metrics["model"]["mae"],
         "seasonal_naive_mae": metrics["seasonal_naive"]["mae"], "mae_improvement": metrics["mae_improvement"],
         "beats_baseline": metrics["beats_baseline"]}
""",
}

RUNNER = """
import resource, sys, time, json
from pathlib import Path
sys.path.insert(0, {functions!r})
work = Path({work!r})
HORIZON = {horizon}
def peak_mb():
    try:  # this process image's own high-water mark
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
started = time.perf_counter()
{body}
print(json.dumps({{"seconds": round(time.perf_counter() - started, 2), "peak_mb": peak_mb(), "facts": facts}}))
"""

GENERATE = """
import json, math, sys, time
from pathlib import Path
sys.path[:0] = [{functions!r}, {tooling!r}]
from lambda_build.sample_data import generate_sales
rows, periods, work = {rows}, {periods}, Path({work!r})
series = max(1, math.ceil(rows / periods))
stores = min(20, series)
items = math.ceil(series / stores)
started = time.perf_counter()
sample = generate_sales(items=items, stores=stores, periods=periods, seed=0, gap_rate=0.01)
(work / "input.csv").write_bytes(sample.content)
print(json.dumps({{"rows": sample.rows, "series": items * stores, "periods": periods, "bytes": len(sample.content),
                  "seconds": round(time.perf_counter() - started, 2)}}))
"""


def run_python(code: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1,000,000)")
    parser.add_argument("--periods", type=int, default=730, help="days of history per series (default 730)")
    parser.add_argument("--horizon", type=int, default=14, help="periods to backtest and forecast (default 14)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.rows < args.periods:
        parser.error("--rows must be at least --periods (one series)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        functions = str(ROOT / "functions")
        print(f"==> generating about {args.rows:,} rows", file=sys.stderr)
        data = run_python(
            GENERATE.format(
                functions=functions, tooling=str(ROOT / "tooling"), rows=args.rows, periods=args.periods, work=str(work)
            )
        )
        results = {}
        for stage, body in STAGES.items():
            print(f"==> {stage}", file=sys.stderr)
            try:
                results[stage] = run_python(RUNNER.format(functions=functions, work=str(work), horizon=args.horizon, body=body))
            except RuntimeError as exc:
                print(f"error: {stage} failed:\n{exc}", file=sys.stderr)
                return 1
    report = {"input": data, "stages": results, "python": sys.version.split()[0]}
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"input: {data['rows']:,} rows, {data['series']:,} series x {data['periods']} days, {data['bytes']:,} bytes")
        print(f"{'stage':<12}{'seconds':>10}{'peak MB':>10}  facts")
        for stage, item in results.items():
            print(f"{stage:<12}{item['seconds']:>10.2f}{item['peak_mb']:>10.1f}  {json.dumps(item['facts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
