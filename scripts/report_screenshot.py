"""Make docs/report.png: the forecast report of a realistic weekly dataset, shot in headless Chromium.

Runs the project's own code in process on generated weekly sales (3 years, 8 items in 3 stores):
features, the backtest (train before the cutoff, forecast the held-out weeks recursively, score
against seasonal naive), the model on everything and its forecast; then renders the report and
takes a screenshot. The per-series backtest frame is built here from the model's public functions,
the way the pipeline's backtest step is to hand it to the report (item, store, date, actual,
prediction, naive).

    .venv/bin/python scripts/report_screenshot.py [--html FILE] [--png docs/report.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "tooling"), str(ROOT)]

import pandas as pd  # noqa: E402
from item_prediction.domain import features, report, schema  # noqa: E402
from item_prediction.ml import model  # noqa: E402
from lambda_build.sample_data import generate_sales  # noqa: E402

from tests.integration import chromium  # noqa: E402

HORIZON = 8


def backtest_rows(frame: pd.DataFrame, manifest: dict, horizon: int) -> pd.DataFrame:
    """The held-out weeks per series: actual, the model's recursive forecast and seasonal naive."""
    cutoff = frame[schema.DATE].max() - pd.DateOffset(weeks=horizon - 1)
    train = frame[frame[schema.DATE] < cutoff]
    holdout = frame[(frame[schema.DATE] >= cutoff) & frame["is_gap"].eq(0)]
    fitted = model.fit(train, manifest["features"])
    ahead = model.recursive_forecast(fitted.estimator, train, horizon, "W", manifest["codes"], fitted.names)
    rows = holdout[[schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]].merge(
        ahead, on=[schema.DATE, schema.ITEM, schema.STORE], how="left"
    )
    rows = rows.rename(columns={schema.QUANTITY: "actual"}).fillna({"prediction": 0.0})
    return rows.assign(naive=model.seasonal_naive(train, rows, "W").fillna(0.0).to_numpy())


def weekly_report() -> str:
    sample = generate_sales(items=8, stores=3, periods=156, frequency="W", seed=21)
    frame, manifest = features.build_features(sample.frame, "W")
    metrics = model.backtest(frame, manifest, HORIZON)
    bundle = model.make_bundle(model.fit(frame, manifest["features"]), frame, manifest, metrics)
    forecast = model.forecast(bundle, frame, HORIZON)
    summary = {
        "dataset": "weekly-sales",
        "forecast_id": f"{bundle.metadata['version']}-demo",
        "model_version": bundle.metadata["version"],
        "frequency": "W",
        "horizon": HORIZON,
        "series": int(forecast.groupby([schema.ITEM, schema.STORE]).ngroups),
        "generated_at": "2026-11-23T07:00:00+00:00",
        "validation": {
            "rows_in": sample.rows,
            "rows_clean": len(sample.frame),
            "rows_quarantined": len(sample.invalid_lines),
            "rules": dict(Counter(sample.invalid_lines.values())),
        },
        "metrics": metrics,
    }
    history = frame[[schema.ITEM, schema.STORE, schema.DATE, schema.QUANTITY]]
    return report.render_report(summary, history, backtest_rows(frame, manifest, HORIZON), forecast)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", help="also keep the page here")
    parser.add_argument("--png", default=str(ROOT / "docs" / "report.png"))
    args = parser.parse_args(argv)
    if chromium.find() is None:
        sys.exit("no chromium: run scripts/bootstrap.sh --with-browser as root (or apt-get install chromium)")
    page = weekly_report()
    with tempfile.TemporaryDirectory() as workdir:
        html = Path(args.html) if args.html else Path(workdir) / "report.html"
        html.write_text(page)
        chromium.screenshot(html, Path(args.png), Path(workdir), width=1000, height=2300)
    subprocess.run(["ls", "-l", args.png], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
