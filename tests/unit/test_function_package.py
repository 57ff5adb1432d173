"""The functions' code package: thin, and importing only the standard library, the layers and itself."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lambda_build import lock, template
from packaging.utils import canonicalize_name

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
OWN = {path.name for path in FUNCTIONS.iterdir() if path.is_dir() and (path / "__init__.py").exists()}


def code_files() -> list[Path]:
    return [p for p in FUNCTIONS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def python_files() -> list[Path]:
    return [path for path in code_files() if path.suffix == ".py"]


def absolute_imports(path: Path) -> set[str]:
    """Every module ``path`` imports by absolute name, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def own_imports(path: Path) -> set[str]:
    """The modules of functions/ that ``path`` imports, relative imports resolved
    (``from ..ml import model`` in item_prediction/steps/predict.py: item_prediction.ml.model)."""
    package = path.relative_to(FUNCTIONS).with_suffix("").parts[:-1]
    names = {name for name in absolute_imports(path) if name.split(".")[0] in OWN}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = ".".join(package[: len(package) - node.level + 1] + ((node.module,) if node.module else ()))
            names |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    return names


def test_function_code_is_thin(layer_config):
    size = sum(path.stat().st_size for path in code_files())
    assert size <= layer_config.budgets["function_code_unzipped"], size


def test_every_import_is_stdlib_a_layer_package_or_our_own(layer_config):
    locked = {canonicalize_name(name) for name in lock.read_lock(layer_config)}
    provided = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in locked for d in dists)
    }
    allowed = set(sys.stdlib_module_names) | provided | OWN
    offenders = [
        f"{path.relative_to(FUNCTIONS)}: {name}"
        for path in python_files()
        for name in absolute_imports(path)
        if name.split(".")[0] not in allowed
    ]
    assert offenders == []


BLOCKER = """
import sys
blocked = set(sys.argv[2].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in this function's layers")
sys.meta_path.insert(0, Block())
import importlib
importlib.import_module(sys.argv[1])
"""
LAYER_MODULES = {
    "core-data-science": "pandas,numpy,dateutil,fastparquet,cramjam,fsspec",
    "ml-libraries": "sklearn,scipy,joblib,threadpoolctl",
    "aws-utilities": "boto3,botocore,aws_lambda_powertools",
}


@pytest.mark.parametrize(
    "spec", template.functions(__import__("lambda_build.config", fromlist=["load"]).load()), ids=lambda s: s.logical_id
)
def test_each_handler_imports_with_only_its_layers(spec):
    module = spec.handler.rsplit(".", 1)[0]
    blocked = ",".join(mods for layer, mods in LAYER_MODULES.items() if layer not in spec.layers)
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKER, module, blocked or "-"],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        env={"POWERTOOLS_METRICS_NAMESPACE": "Test", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]


# The rule issue 11 names: scikit-learn (and joblib, which unpickles its models) is imported in
# item_prediction/ml only, and nothing DataValidation, FeatureEngineering or the read API import
# loads it; the API loads no pandas or numpy either (its function has no data-science layer).
ML_LIBRARIES = {"sklearn", "joblib"}
LOADED = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


IN_LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "AFunction", "BUCKET_NAME": "b", "TABLE_NAME": "t"}  # initialise() runs


def loaded_by(handler_module: str, env: dict | None = None) -> set[str]:
    """The top-level packages in sys.modules once ``handler_module`` is imported in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", LOADED, handler_module],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        env={"POWERTOOLS_METRICS_NAMESPACE": "T", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]
    return set(json.loads(completed.stdout.splitlines()[-1]))


NEVER_LOADED = {
    "data_validation.app": ML_LIBRARIES,
    "feature_engineering.app": ML_LIBRARIES,
    "predictions.api": ML_LIBRARIES | {"pandas", "numpy"},
}


@pytest.mark.parametrize("env", [None, IN_LAMBDA], ids=["imported", "initialised in Lambda"])
@pytest.mark.parametrize("handler_module", sorted(NEVER_LOADED))
def test_a_handler_loads_no_library_its_function_runs_without(handler_module, env):
    assert loaded_by(handler_module, env) & NEVER_LOADED[handler_module] == set()


def test_a_pipeline_handler_loads_the_parquet_engine_at_init_in_lambda():
    """In a Lambda environment the clients and the Parquet engine are made at init (runtime.initialise)."""
    assert "fastparquet" not in loaded_by("feature_engineering.app")
    assert {"fastparquet", "botocore"} <= loaded_by("feature_engineering.app", IN_LAMBDA)


def test_the_predictions_handler_does_load_scikit_learn():
    """The check above can see the libraries: the one handler that needs them has them loaded."""
    assert ML_LIBRARIES | {"pandas", "numpy"} <= loaded_by("predictions.app")


def test_only_the_ml_room_imports_scikit_learn_or_joblib():
    importers = {
        path.relative_to(FUNCTIONS).as_posix()
        for path in python_files()
        if {name.split(".")[0] for name in absolute_imports(path)} & ML_LIBRARIES
    }
    assert importers == {"item_prediction/ml/model.py"}


def test_only_the_prediction_step_imports_the_ml_room():
    importers = {
        path.relative_to(FUNCTIONS).as_posix()
        for path in python_files()
        if not path.is_relative_to(FUNCTIONS / "item_prediction" / "ml")
        and any(name == "item_prediction.ml" or name.startswith("item_prediction.ml.") for name in own_imports(path))
    }
    assert importers == {"item_prediction/steps/predict.py"}
