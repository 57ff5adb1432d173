#!/usr/bin/env python3
"""Which models to train at scale: per shard, per store, one for everything, or one global model
fitted on a bounded sample of series, side by side on the same M5-shaped data (issue 12, point 3).

The data is the scale benchmark's (tooling/lambda_build/m5_like.py: items x ten stores, daily,
intermittent demand, price steps, promotions, staggered starts). Features are built once as
FeatureEngineering builds them; every scope holds out the same last --horizon days
(model.holdout_split), and each group of series is scored by model.backtest with the model its
scope gives it:

  one model          one fit on every series (what a single shard does)
  per shard xN       one fit per series shard (domain.shards, N = 4 and 16), what the pipeline runs
  per store          one fit per store (what won the M5 competition)
  global sample 1/4  one fit on the series of shard 0 of 4, forecasting every shard

Every fit above keeps the rows the pipeline's do (model.training_rows: a daily training set of more
than model.ZERO_SAMPLE_FROM rows fits on its last model.RECENT_MONTHS months, with every sale and
half of the zeros). Then the pipeline's own scope (domain.shards.shard_count_for of the rows) with
other choices of rows, side by side:

  last 18 months, zeros: 1/2        the pipeline's
  every period, zeros: 1/2          the whole history (the fits before model.RECENT_MONTHS)
  last 18 months, zeros: every row  no sampling (the fits before model.zero_sample)
  last 18 months, zeros: 1/3, 1/4   fewer zeros still

MAE, seasonal naive's MAE and the cross-conformal P10-P90 coverage are exact over all held-out
records (added from each group's sums); fit seconds are the sum of the scope's fits.

Example: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_model_scope.py --rows 1000000 --format json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling"), str(ROOT / "functions")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

import pandas as pd  # noqa: E402
from item_prediction.domain import features as feats  # noqa: E402
from item_prediction.domain import schema, shards  # noqa: E402
from item_prediction.ml import model  # noqa: E402
from lambda_build import m5_like  # noqa: E402

SUMS = ("abs_error", "naive_abs_error", "count", "inside_p10_p90")


def score(groups: list[pd.DataFrame], manifest: dict, horizon: int, fitter) -> dict:
    """Backtest every group with the model ``fitter(train rows)`` gives it; exact totals."""
    totals, fit_s = dict.fromkeys(SUMS, 0.0), 0.0
    groups = [group for group in groups if len(group)]  # a small dataset leaves some of 16 shards empty
    for group in groups:
        cutoff, train, holdout = model.holdout_split(group, manifest["frequency"], horizon)
        started = time.perf_counter()
        fitted = fitter(train)
        fit_s += time.perf_counter() - started
        result = model.backtest(group, manifest, horizon, window=model.Holdout(cutoff, train, holdout, fitted))
        for name in SUMS:
            totals[name] += result["sums"].get(name, 0)
    count = totals["count"]
    return {
        "groups": len(groups),
        "mae": round(totals["abs_error"] / count, 4),
        "seasonal_naive_mae": round(totals["naive_abs_error"] / count, 4),
        "coverage_p10_p90": round(totals["inside_p10_p90"] / count, 3),
        "fit_s": round(fit_s, 2),
    }


def scopes(frame: pd.DataFrame, manifest: dict, horizon: int) -> dict:
    own = lambda train: model.fit(train, manifest["features"], manifest["frequency"])  # noqa: E731
    by_shard = lambda count: shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count)  # noqa: E731
    results = {"one model": score([frame], manifest, horizon, own)}
    for count in (4, 16):
        ids = by_shard(count)
        results[f"per shard x{count}"] = score([frame[ids == s] for s in range(count)], manifest, horizon, own)
    results["per store"] = score([group for _, group in frame.groupby(schema.STORE, sort=True)], manifest, horizon, own)
    _, train, _ = model.holdout_split(frame, manifest["frequency"], horizon)
    started = time.perf_counter()
    sampled = train[shards.shard_of(train[schema.ITEM], train[schema.STORE], 4) == 0]
    sample = model.fit(sampled, manifest["features"], manifest["frequency"])
    sample_s = time.perf_counter() - started
    ids = by_shard(4)
    results["global sample 1/4"] = {
        **score([frame[ids == s] for s in range(4)], manifest, horizon, lambda train: sample),
        "fit_s": round(sample_s, 2),
    }
    return results


def training_rows(frame: pd.DataFrame, manifest: dict, horizon: int, count: int) -> dict:
    """The pipeline's scope (``count`` shards) with the rows its fits keep (model.training_rows:
    of a large daily set, the last model.RECENT_MONTHS months; zeros sampled at 1/2), then with every
    period, and with the zeros kept at other rates (the model's settings set for each, restored after)."""
    own = lambda train: model.fit(train, manifest["features"], manifest["frequency"])  # noqa: E731
    ids = shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count)
    groups = [frame[ids == s] for s in range(count)]
    kept = model.ZERO_SAMPLE_RATE, model.RECENT_MONTHS
    months = kept[1].get(manifest["frequency"])
    recent = f"last {months} months" if months else "every period"
    variants = (
        (f"{recent}, zeros: 1/2", 0.5, kept[1]),
        ("every period, zeros: 1/2", 0.5, {}),
        (f"{recent}, zeros: every row", 1.0, kept[1]),
        (f"{recent}, zeros: 1/3", 1 / 3, kept[1]),
        (f"{recent}, zeros: 1/4", 0.25, kept[1]),
    )
    results = {}
    try:
        for name, rate, window in variants:
            model.ZERO_SAMPLE_RATE, model.RECENT_MONTHS = rate, window
            results[f"x{count}, {name}"] = score(groups, manifest, horizon, own)
    finally:
        model.ZERO_SAMPLE_RATE, model.RECENT_MONTHS = kept
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of M5-shaped data (default 1,000,000)")
    parser.add_argument("--horizon", type=int, default=schema.DEFAULT_HORIZON["D"], help="days held out (default 14)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if not 10_000 <= args.rows <= 20_000_000:
        parser.error(f"--rows {args.rows}: from 10,000 to 20,000,000")
    warnings.filterwarnings("ignore")
    print(f"==> generating {args.rows:,} M5-shaped rows and their features", file=sys.stderr)
    shape = m5_like.shape_for(args.rows)
    data = m5_like.frame(shape)
    frame, manifest = feats.build_features(data, "D")
    print("==> fitting and backtesting every scope", file=sys.stderr)
    report = {
        "rows": len(data),
        "series": manifest["series"],
        "horizon": args.horizon,
        "scopes": scopes(frame, manifest, args.horizon),
        "training_rows": training_rows(frame, manifest, args.horizon, shards.shard_count_for(len(data))),
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['rows']:,} rows, {report['series']:,} series, {args.horizon} days held out")
    print(f"{'scope':<40}{'groups':>7}{'MAE':>9}{'naive':>9}{'P10-P90':>9}{'fit s':>8}")
    for name, row in [*report["scopes"].items(), *report["training_rows"].items()]:
        print(
            f"{name:<40}{row['groups']:>7}{row['mae']:>9.4f}{row['seasonal_naive_mae']:>9.4f}"
            f"{row['coverage_p10_p90']:>9.3f}{row['fit_s']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
