#!/usr/bin/env python3
"""Accuracy benchmark: our model against open-source forecasters on the same backtest split.

For each export of the corpus (tooling/lambda_build/accuracy_corpus.py: generated retail-like
exports and public series shipped in PyPI packages) the features are built as FeatureEngineering
builds them, the last H periods are held out exactly as the model's backtest holds them out
(model.holdout_split), and every forecaster is trained on the periods before and scored on the
held-out sales records with MAE and WAPE:

  ours             model.backtest (future prices unknown: last price, no promotion)
  ours+plan        model.backtest with the export's prices and promotions declared known in
                   advance (the held-out recorded values are the plan)
  seasonal_naive   model.seasonal_naive, the backtest's baseline
  autoets          statsforecast AutoETS (season length of the frequency)
  lgbm             mlforecast + LightGBM: lags, rolling means of lag 1, date features
  lgbm+plan        the same with unit_price and promotion as dynamic features, the held-out
                   recorded values given as their future

plus our P10-P90 interval coverage on the held-out records. Development only: statsforecast,
mlforecast and LightGBM are yardsticks in requirements-dev, never in a layer.

Example: OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_accuracy.py --format json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling"), str(ROOT / "functions")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NIXTLA_ID_AS_COL", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from item_prediction.domain import features as feats  # noqa: E402
from item_prediction.domain import schema  # noqa: E402
from item_prediction.ml import model  # noqa: E402
from lambda_build.accuracy_corpus import corpus  # noqa: E402

MODELS = ("ours", "ours+plan", "seasonal_naive", "autoets", "lgbm", "lgbm+plan")
DATE_FEATURES = {"D": ["dayofweek", "day", "month", "year"], "W": ["month", "year", "week"], "M": ["month", "year"]}


def _long(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The Nixtla long format: unique_id, ds, y (and ``extra`` columns)."""
    return pd.DataFrame(
        {
            "unique_id": frame[schema.ITEM] + "|" + frame[schema.STORE],
            "ds": frame[schema.DATE].to_numpy(),
            "y": frame[schema.QUANTITY].to_numpy(),
            **{column: frame[column].fillna(0.0).to_numpy() for column in extra},
        }
    )


def _future_plan(feature_frame: pd.DataFrame, train: pd.DataFrame, frequency: str, horizon: int) -> pd.DataFrame:
    """Each series' next ``horizon`` periods after its training end with their recorded price and
    promotion (the grid's), or the last price and no promotion where the grid has none."""
    ends = train.groupby(feats.SERIES, sort=False).agg(end=(schema.DATE, "max"), last_price=(schema.PRICE, "last")).reset_index()
    offset = pd.tseries.frequencies.to_offset(feats.grid_freq(frequency, train[schema.DATE]))
    future = pd.concat(
        [ends.assign(**{schema.DATE: ends["end"] + step * offset}) for step in range(1, horizon + 1)], ignore_index=True
    )
    future = future.merge(
        feature_frame[[*feats.KEY_COLUMNS, schema.PRICE, schema.PROMOTION]], on=list(feats.KEY_COLUMNS), how="left"
    )
    future[schema.PRICE] = future[schema.PRICE].fillna(future["last_price"])
    future[schema.PROMOTION] = future[schema.PROMOTION].fillna(0)
    future[schema.QUANTITY] = np.nan
    return future


def autoets(train: pd.DataFrame, frequency: str, freq: str, horizon: int) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    season = schema.SEASON_LENGTH[frequency]
    forecaster = StatsForecast(models=[AutoETS(season_length=season)], freq=freq, n_jobs=1)
    result = forecaster.forecast(df=_long(train), h=horizon)
    return result.rename(columns={"AutoETS": "prediction"})[["unique_id", "ds", "prediction"]]


def lgbm(train: pd.DataFrame, frequency: str, freq: str, horizon: int, plan: pd.DataFrame | None) -> pd.DataFrame:
    import lightgbm
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    extra = (schema.PRICE, schema.PROMOTION) if plan is not None else ()
    forecaster = MLForecast(
        models={"lgbm": lightgbm.LGBMRegressor(random_state=0, n_jobs=1, verbosity=-1)},
        freq=freq,
        lags=list(feats.LAGS[frequency]),
        lag_transforms={1: [RollingMean(window_size=w) for w in feats.WINDOWS[frequency]]},
        date_features=DATE_FEATURES[frequency],
    )
    forecaster.fit(_long(train, extra), static_features=[])
    future = _long(plan, extra).drop(columns="y") if plan is not None else None
    result = forecaster.predict(horizon, X_df=future)
    return result.rename(columns={"lgbm": "prediction"})[["unique_id", "ds", "prediction"]]


def _score(holdout: pd.DataFrame, predicted: pd.DataFrame | None) -> dict:
    scored = _long(holdout)
    if predicted is not None:
        scored = scored.merge(predicted, on=["unique_id", "ds"], how="left")
    return model.scores(scored["y"], scored["prediction"].fillna(0.0).clip(lower=0))


def _timed(results: dict, name: str, call) -> None:
    started = time.perf_counter()
    try:
        results[name] = call()
    except Exception as exc:  # a yardstick that cannot fit this export: say so, go on
        results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    results[name]["seconds"] = round(time.perf_counter() - started, 2)


def bench_export(export, *, peers: bool = True) -> dict:
    """Every model's scores on one export (the same split for all)."""
    frame, manifest = feats.build_features(export.frame, export.frequency)
    horizon, frequency = export.horizon, export.frequency
    cutoff, train, holdout = model.holdout_split(frame, frequency, horizon)
    freq = manifest["grid_freq"]
    results: dict = {}

    def ours(known: list[str]) -> dict:
        planned, planned_manifest = feats.build_features(export.frame, frequency, known_in_advance=known)
        metrics = model.backtest(planned, planned_manifest, horizon)
        return {**metrics["model"], "coverage_p10_p90": metrics.get("coverage_p10_p90")}

    _timed(results, "ours", lambda: ours([]))
    if export.has_price:
        _timed(results, "ours+plan", lambda: ours([schema.PRICE, schema.PROMOTION]))
    _timed(
        results,
        "seasonal_naive",
        lambda: model.scores(holdout[schema.QUANTITY], model.seasonal_naive(train, holdout, frequency).fillna(0.0)),
    )
    if peers:
        _timed(results, "autoets", lambda: _score(holdout, autoets(train, frequency, freq, horizon)))
        _timed(results, "lgbm", lambda: _score(holdout, lgbm(train, frequency, freq, horizon, None)))
        if export.has_price:
            plan = _future_plan(frame, train, frequency, horizon)
            _timed(results, "lgbm+plan", lambda: _score(holdout, lgbm(train, frequency, freq, horizon, plan)))
    return {
        "export": export.name,
        "source": export.source,
        "frequency": frequency,
        "horizon": horizon,
        "cutoff": cutoff.strftime("%Y-%m-%d"),
        "series": manifest["series"],
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "results": results,
    }


def markdown(rows: list[dict], metric: str) -> str:
    lines = [f"| export | {' | '.join(MODELS)} | ours (/ ours+plan) P10-P90 coverage |", "|---" * (len(MODELS) + 2) + "|"]
    for row in rows:
        cells = []
        for name in MODELS:
            result = row["results"].get(name)
            value = None if result is None else result.get(metric)
            cells.append("–" if value is None else f"{value:,.4g}")
        coverages = [row["results"].get(name, {}).get("coverage_p10_p90") for name in ("ours", "ours+plan")]
        shown = " / ".join(f"{value:.2f}" for value in coverages if value is not None) or "–"
        lines.append(f"| {row['export']} | {' | '.join(cells)} | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--quick", action="store_true", help="smaller generated exports (a quarter of the series)")
    parser.add_argument("--only", help="run only the exports whose name contains this text")
    parser.add_argument("--no-peers", action="store_true", help="ours and seasonal naive only (fast iterations)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for export in corpus(quick=args.quick):
        if args.only and args.only not in export.name:
            continue
        print(f"==> {export.name}", file=sys.stderr)
        rows.append(bench_export(export, peers=not args.no_peers))
    if args.format == "json":
        print(json.dumps({"exports": rows}, indent=2))
    else:
        print("MAE (lower is better)\n" + markdown(rows, "mae") + "\n\nWAPE\n" + markdown(rows, "wape"))
        for row in rows:
            print(
                f"{row['export']}: {row['source']}; cutoff {row['cutoff']}, {row['series']} series, "
                f"{row['holdout_rows']} held-out records; seconds "
                + ", ".join(f"{k} {v.get('seconds')}" for k, v in row["results"].items())
                + "".join(f"; {k} failed: {v['error']}" for k, v in row["results"].items() if "error" in v)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
