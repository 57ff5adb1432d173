#!/usr/bin/env python3
"""Benchmark the pipeline's stages on generated data: seconds and peak memory per stage.

Each stage (validation, features, prediction = train with backtest + forecast) runs in a fresh
process, as in Lambda, reading the previous stage's output from disk; peak memory is that
process's maximum resident set. Run: .venv/bin/python scripts/bench_pipeline.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = {
    "validation": """
import io, datetime, pandas as pd
from item_prediction import validation, schema
from item_prediction.storage import CsvGzipWriter
clean, quarantined = CsvGzipWriter(), CsvGzipWriter()
with open(work / "input.csv", "rb") as handle:
    report = validation.validate(handle, schema.ColumnMapping.identity(), clean_sink=clean, quarantine_sink=quarantined,
                                 today=datetime.date(2100, 1, 1))
(work / "clean.csv.gz").write_bytes(clean.finish().read())
facts = {"rows_in": report["rows_in"], "clean": report["rows_clean"], "quarantined": report["rows_quarantined"]}
""",
    "features": """
import json, pandas as pd
from item_prediction import features
clean = pd.read_csv(work / "clean.csv.gz", dtype={"item_id": "str", "store_id": "str", "date": "str"}, keep_default_na=False, na_values={"unit_price": [""]})
frame, manifest = features.build_features(clean, "D")
frame.to_pickle(work / "features.pkl")
(work / "manifest.json").write_text(json.dumps(manifest))
facts = {"rows": manifest["rows"], "series": manifest["series"], "features": len(manifest["features"])}
""",
    "prediction": """
import json, pandas as pd
from item_prediction import model
frame = pd.read_pickle(work / "features.pkl")
manifest = json.loads((work / "manifest.json").read_text())
bundle = model.train(frame, manifest, 14)
forecast = model.forecast(bundle, frame, 14)
facts = {"predictions": len(forecast), "backtest": bundle.metadata["metrics"]}
""",
}

RUNNER = """
import resource, sys, time, json
from pathlib import Path
sys.path.insert(0, {functions!r})
work = Path({work!r})
started = time.perf_counter()
{body}
print(json.dumps({{"seconds": round(time.perf_counter() - started, 2),
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "facts": facts}}))
"""


def generate(rows: int, work: Path) -> dict:
    sys.path.insert(0, str(ROOT / "functions"))
    from item_prediction.sample_data import generate_sales

    periods = 730
    series = max(1, math.ceil(rows / periods))
    stores = min(20, series)
    items = math.ceil(series / stores)
    sample = generate_sales(items=items, stores=stores, periods=periods, seed=0, gap_rate=0.0)
    (work / "input.csv").write_bytes(sample.content)
    return {"rows": sample.rows, "series": items * stores, "bytes": len(sample.content)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1,000,000)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"==> generating about {args.rows:,} rows", file=sys.stderr)
        data = generate(args.rows, work)
        results = {}
        for stage, body in STAGES.items():
            print(f"==> {stage}", file=sys.stderr)
            code = RUNNER.format(functions=str(ROOT / "functions"), work=str(work), body=body)
            completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if completed.returncode != 0:
                print(f"error: {stage} failed: {completed.stderr.strip().splitlines()[-1]}", file=sys.stderr)
                return 1
            results[stage] = json.loads(completed.stdout.strip().splitlines()[-1])
    report = {"input": data, "stages": results}
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"input: {data['rows']:,} rows, {data['series']:,} series, {data['bytes']:,} bytes")
        print(f"{'stage':<12}{'seconds':>10}{'peak MB':>10}  facts")
        for stage, item in results.items():
            print(f"{stage:<12}{item['seconds']:>10.2f}{item['peak_mb']:>10.1f}  {json.dumps(item['facts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
