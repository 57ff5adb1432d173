"""The accuracy benchmark's corpus and its scoring on one split (the yardsticks themselves run in the script)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
from lambda_build import accuracy_corpus

ROOT = Path(__file__).resolve().parents[3]


def test_generated_exports_are_deterministic_and_shaped_like_exports():
    first = accuracy_corpus.generate(frequency="W", series=6, periods=60, seed=1, stores=2, gap_rate=0.5)
    again = accuracy_corpus.generate(frequency="W", series=6, periods=60, seed=1, stores=2, gap_rate=0.5)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == ["date", "item_id", "store_id", "quantity", "unit_price", "promotion"]
    assert first["quantity"].ge(0).all() and first["unit_price"].gt(0).all()
    assert len(first) < 6 * 60  # zero-sale weeks left out, some products start late
    assert first.loc[first["promotion"] == 1, "quantity"].mean() > first.loc[first["promotion"] == 0, "quantity"].mean()


def test_the_corpus_covers_every_frequency_and_says_where_each_export_comes_from():
    exports = accuracy_corpus.corpus(quick=True)
    assert {export.frequency for export in exports} == {"D", "W", "M"}
    assert all(export.source and len(export.frame) for export in exports)
    assert any("statsmodels" in export.source for export in exports)


def test_the_benchmark_scores_ours_and_the_baseline_on_the_backtests_split():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "scripts" / "bench_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    export = accuracy_corpus.Export(
        "tiny", accuracy_corpus.generate(frequency="M", series=4, periods=40, seed=2, start="2020-01-01"), "M", 6, "test"
    )
    row = bench.bench_export(export, peers=False)
    assert set(row["results"]) == {"ours", "ours+plan", "seasonal_naive"}
    assert row["holdout_rows"] == 4 * 6 and row["cutoff"] == "2022-11-01"
    assert "| tiny |" in bench.markdown([row], "mae")
