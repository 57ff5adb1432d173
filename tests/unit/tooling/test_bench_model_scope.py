"""The model-scope benchmark: its zero-sampling rates side by side, each a real fit of the
pipeline's scope, with the model's sampling settings given back afterwards."""

import importlib.util
import json

from item_prediction.domain import features
from item_prediction.ml import model
from lambda_build import m5_like

from ...conftest import REPO_ROOT


def _script():
    spec = importlib.util.spec_from_file_location("bench_model_scope", REPO_ROOT / "scripts" / "bench_model_scope.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zero_rates_fit_each_rate_and_restore_the_models_settings(monkeypatch):
    bench = _script()
    frame, manifest = features.build_features(m5_like.frame(m5_like.Shape(items=10, stores=4, days=200), seed=3), "D")
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", 1_000)  # these shards sample (the real bound is 200,000 rows)
    rates = bench.zero_rates(frame, manifest, 14, 2)
    assert list(rates) == ["x2, zeros: every row", "x2, zeros: 1/2", "x2, zeros: 1/3", "x2, zeros: 1/4"]
    assert len({row["mae"] for row in rates.values()}) == 4, "each rate is its own fit"
    assert all(row["groups"] == 2 and row["mae"] < row["seasonal_naive_mae"] for row in rates.values())
    assert (model.ZERO_SAMPLE_FROM, model.ZERO_SAMPLE_RATE) == (1_000, 0.5)


def test_the_report_lists_the_rates_beside_the_scopes(capsys):
    assert _script().main(["--rows", "10000", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"one model", "per shard x4", "global sample 1/4"} <= set(report["scopes"])
    assert list(report["zero_sample_rates"]) == ["x1, zeros: every row", "x1, zeros: 1/2", "x1, zeros: 1/3", "x1, zeros: 1/4"]
    # 10,000 rows are under the bound: every rate fits every row, the same model
    assert len({row["mae"] for row in report["zero_sample_rates"].values()}) == 1
