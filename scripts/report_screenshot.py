"""Make docs/report.png: the forecast report of a realistic weekly dataset, shot in headless Chromium.

Runs the project's own code in process on generated weekly sales (3 years, 8 items in 3 stores):
features, the backtest (train before the cutoff, forecast the held-out weeks recursively, score
against seasonal naive; its scored rows, as a shard's Predict hands them to the report), the model
on everything and its forecast; then renders the report and takes a screenshot.

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

from item_prediction.domain import features, report, schema  # noqa: E402
from item_prediction.ml import model  # noqa: E402
from lambda_build.sample_data import generate_sales  # noqa: E402

from tests.integration import chromium  # noqa: E402

HORIZON = 8


def weekly_report() -> str:
    sample = generate_sales(items=8, stores=3, periods=156, frequency="W", seed=21)
    frame, manifest = features.build_features(sample.frame, "W")
    window = model.holdout_fit(frame, manifest, HORIZON)
    metrics, backtest = model.backtest(frame, manifest, HORIZON, return_rows=True, window=window)
    bundle = model.make_bundle(window.fitted, window.train, manifest, metrics)
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
    return report.render_report(summary, history, backtest[list(report.BACKTEST_COLUMNS)], forecast)


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
