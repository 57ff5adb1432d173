"""functions/Makefile, the build each function's template entry names (BuildMethod: makefile)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lambda_build import config, template, tools

FUNCTIONS = template.TEMPLATE_PATH.parent / "functions"
HANDLER_PACKAGE = {  # the claim: each artifact holds its handler's package and item_prediction, nothing else
    "DataValidationFunction": "data_validation",
    "FeatureEngineeringFunction": "feature_engineering",
    "PredictionsFunction": "predictions",
    "PredictionsApiFunction": "predictions",
}


def make(logical_id: str, artifacts, **variables: str) -> subprocess.CompletedProcess:
    args = [f"{key}={value}" for key, value in variables.items()]
    return subprocess.run(
        ["make", "-s", f"build-{logical_id}", f"ARTIFACTS_DIR={artifacts}", *args],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def target_python():
    cfg = config.load()
    return tools.target_python(cfg.python_version)


@pytest.mark.parametrize("logical_id", sorted(HANDLER_PACKAGE))
def test_artifact_is_the_handler_and_the_domain_package_with_hash_based_bytecode(logical_id, target_python, tmp_path):
    cfg = config.load()
    spec = {s.logical_id: s for s in template.functions(cfg)}[logical_id]
    assert spec.code_uri == FUNCTIONS
    completed = make(logical_id, tmp_path, TARGET_PYTHON=target_python)
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({HANDLER_PACKAGE[logical_id], "item_prediction"})
    assert spec.handler.split(".")[0] == HANDLER_PACKAGE[logical_id]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= cfg.budgets["function_code_unzipped"]
    sources = [p for p in files if p.suffix == ".py"]
    compiled = [p for p in files if p.suffix == ".pyc"]
    assert len(compiled) == len(sources) > 0
    tag = f"cpython-{cfg.python_version.replace('.', '')}"
    for pyc in compiled:
        header = pyc.read_bytes()[:16]
        assert pyc.name.endswith(f".{tag}.pyc"), pyc
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{pyc}: not unchecked hash-based bytecode"
    # tracebacks name the path the code has on Lambda, not the build machine's
    marshalled = next(p for p in compiled if p.name.startswith("app.") or p.name.startswith("api.")).read_bytes()
    assert b"/var/task/" in marshalled and str(tmp_path).encode() not in marshalled


def test_without_the_target_interpreter_it_ships_source_and_says_so(tmp_path):
    completed = make("DataValidationFunction", tmp_path, TARGET_PYTHON="/nonexistent/python3.13")
    assert completed.returncode == 0, completed.stderr
    assert "shipping source without bytecode" in completed.stdout
    assert (tmp_path / "data_validation" / "app.py").exists()
    assert not list(tmp_path.rglob("*.pyc")) and not list(tmp_path.rglob("__pycache__"))


def test_an_interpreter_of_another_version_is_not_used(target_python, tmp_path):
    # the 3.13 interpreter, asked for as if the runtime were 3.12: its bytecode would not load there
    completed = make("DataValidationFunction", tmp_path, TARGET_PYTHON=target_python, RUNTIME_VERSION="3.12")
    assert completed.returncode == 0 and "shipping source without bytecode" in completed.stdout
    assert not list(tmp_path.rglob("*.pyc"))


WITHOUT_ML = {"DataValidationFunction": "data_validation.app", "FeatureEngineeringFunction": "feature_engineering.app"}
ML_ROOM = {"item_prediction/ml/__init__.py", "item_prediction/ml/model.py", "item_prediction/steps/predict.py"}
REPORT_ROOM = {
    "item_prediction/domain/report.py",
    "item_prediction/domain/report_assets/vega-bundle.js.gz",
    "item_prediction/steps/report.py",
    "item_prediction/steps/aggregate.py",
}
LOADED = "import importlib, sys; importlib.import_module(sys.argv[1]); print(sorted({'sklearn', 'joblib'} & set(sys.modules)))"


@pytest.mark.parametrize("logical_id", sorted(HANDLER_PACKAGE))
def test_only_the_predictions_artifacts_ship_the_ml_room_and_the_report(logical_id, tmp_path):
    completed = make(logical_id, tmp_path, TARGET_PYTHON="/nonexistent/python3.13")  # source only: the files are the point
    assert completed.returncode == 0, completed.stderr
    shipped = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file()}
    assert shipped & ML_ROOM == (set() if logical_id in WITHOUT_ML else ML_ROOM)
    assert shipped & REPORT_ROOM == (set() if logical_id in WITHOUT_ML else REPORT_ROOM), "the report only where it is written"
    assert "item_prediction/steps/validate.py" in shipped


@pytest.mark.parametrize("logical_id", sorted(WITHOUT_ML))
def test_an_artifact_without_the_ml_room_still_imports_its_handler(logical_id, tmp_path):
    assert make(logical_id, tmp_path, TARGET_PYTHON="/nonexistent/python3.13").returncode == 0
    completed = subprocess.run(
        [sys.executable, "-c", LOADED, WITHOUT_ML[logical_id]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"POWERTOOLS_METRICS_NAMESPACE": "T", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]
    assert completed.stdout.strip() == "[]"
