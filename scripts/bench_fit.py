#!/usr/bin/env python3
"""One training fit (model.fit) with its bin edges computed here against scikit-learn's own binning,
side by side on M5-shaped daily data at several training sizes.

* ``edges here``: what the pipeline does. At or under scikit-learn's 200,000-row binning subsample,
  model.weighted_bins computes the weighted bin edges with scikit-learn's own function, all 254
  percentiles in one call;
* ``scikit-learn``: the same fit with model.BINNING_SUBSAMPLE = 0, so HistGradientBoosting bins
  every column itself (scikit-learn 1.9 sorts a column once per percentile in a weighted fit).

Over 200,000 rows both are the same fit (scikit-learn draws rows by weight and bins without
weights). Each size is fitted --repeats times per way; the medians, their ratio and whether the two
models predict exactly the same on the training rows are printed.

Usage: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_fit.py [--rows 20000,100000,190000] [--repeats 3] [--format json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling"), str(ROOT / "functions")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from item_prediction.domain import features as feats  # noqa: E402
from item_prediction.ml import model  # noqa: E402
from lambda_build import m5_like  # noqa: E402


def training_rows(rows: int) -> tuple[pd.DataFrame, list[str]]:
    """The training rows of an M5-shaped daily dataset of about ``rows`` rows, and its features."""
    shape = m5_like.shape_for(rows)
    data = m5_like.frame(shape)
    frame, manifest = feats.build_features(data, "D")
    _, train, _ = model.holdout_split(frame, "D", 14)
    return train, manifest["features"]


def timed_fits(train: pd.DataFrame, names: list[str], repeats: int, subsample: int) -> tuple[float, model.Fitted]:
    """The median seconds of ``repeats`` fits with model.BINNING_SUBSAMPLE = ``subsample``, and the last fit."""
    kept, model.BINNING_SUBSAMPLE = model.BINNING_SUBSAMPLE, subsample
    try:
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            fitted = model.fit(train, names)
            seconds.append(time.perf_counter() - started)
    finally:
        model.BINNING_SUBSAMPLE = kept
    return statistics.median(seconds), fitted


def measure(sizes: list[int], repeats: int) -> list[dict]:
    results = []
    for rows in sizes:
        print(f"==> {rows:,} rows: building features, then {repeats} fits each way", file=sys.stderr, flush=True)
        train, names = training_rows(rows)
        ours, fitted = timed_fits(train, names, repeats, model.BINNING_SUBSAMPLE)
        theirs, reference = timed_fits(train, names, repeats, 0)
        same = np.array_equal(fitted.estimator.predict(train[fitted.names]), reference.estimator.predict(train[reference.names]))
        results.append(
            {
                "training_rows": len(train),
                "edges_here_s": round(ours, 3),
                "scikit_learn_s": round(theirs, 3),
                "speedup": round(theirs / ours, 2),
                "binned_columns": len(fitted.estimator.bins_),
                "same_predictions": bool(same),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = "20000,100000,190000"
    parser.add_argument("--rows", default=sizes, help="dataset sizes, comma-separated (default 20000,100000,190000)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per way and size; the median is reported (default 3)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        sizes = [int(text) for text in args.rows.split(",")]
    except ValueError:
        parser.error(f"--rows {args.rows!r}: comma-separated whole numbers")
    if not all(10_000 <= size <= 2_000_000 for size in sizes) or args.repeats < 1:
        parser.error("--rows: each from 10,000 to 2,000,000; --repeats at least 1")
    warnings.filterwarnings("ignore")
    results = measure(sizes, args.repeats)
    if args.format == "json":
        print(json.dumps({"repeats": args.repeats, "sizes": results}, indent=2))
        return 0
    print(f"{'training rows':>14}{'edges here s':>14}{'scikit-learn s':>16}{'speed-up':>10}{'binned':>8}  same predictions")
    for row in results:
        print(
            f"{row['training_rows']:>14,}{row['edges_here_s']:>14.2f}{row['scikit_learn_s']:>16.2f}"
            f"{row['speedup']:>9.2f}x{row['binned_columns']:>8}  {row['same_predictions']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
