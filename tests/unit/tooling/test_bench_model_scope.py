"""The model-scope benchmark: its choices of training rows side by side (recent months, zero
sampling rates), each a real fit of the pipeline's scope, with the model's settings given back."""

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


NAMES = [
    "last 18 months, zeros: 1/2",
    "every period, zeros: 1/2",
    "last 18 months, zeros: every row",
    "last 18 months, zeros: 1/3",
    "last 18 months, zeros: 1/4",
]


def test_training_rows_fit_each_choice_and_restore_the_models_settings(monkeypatch):
    bench = _script()
    frame, manifest = features.build_features(m5_like.frame(m5_like.Shape(items=10, stores=4, days=600), seed=3), "D")
    monkeypatch.setattr(model, "ZERO_SAMPLE_FROM", 1_000)  # these shards sample (the real bound is 200,000 rows)
    rows = bench.training_rows(frame, manifest, 14, 2)
    assert list(rows) == [f"x2, {name}" for name in NAMES]
    assert len({row["mae"] for row in rows.values()}) == 5, "each choice is its own fit"
    assert all(row["groups"] == 2 and row["mae"] < row["seasonal_naive_mae"] for row in rows.values())
    assert (model.ZERO_SAMPLE_FROM, model.ZERO_SAMPLE_RATE, model.RECENT_MONTHS) == (1_000, 0.5, {"D": 18})


def test_the_report_lists_the_training_rows_beside_the_scopes(capsys):
    assert _script().main(["--rows", "10000", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"one model", "per shard x4", "global sample 1/4"} <= set(report["scopes"])
    assert list(report["training_rows"]) == [f"x1, {name}" for name in NAMES]
    # 10,000 rows are under the bound: every choice fits every row, the same model
    assert len({row["mae"] for row in report["training_rows"].values()}) == 1
