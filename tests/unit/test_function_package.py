"""The functions' code package: thin, and importing only the standard library, the layers and itself."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from lambda_build import lock, template

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
OWN = {path.name for path in FUNCTIONS.iterdir() if path.is_dir() and (path / "__init__.py").exists()}


def code_files() -> list[Path]:
    return [p for p in FUNCTIONS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_function_code_is_thin(layer_config):
    size = sum(path.stat().st_size for path in code_files())
    assert size <= layer_config.budgets["function_code_unzipped"], size


def test_every_import_is_stdlib_a_layer_package_or_our_own(layer_config):
    locked = {canonicalize_name(name) for name in lock.read_lock(layer_config)}
    provided = {module for module, dists in importlib.metadata.packages_distributions().items() if any(canonicalize_name(d) in locked for d in dists)}
    allowed = set(sys.stdlib_module_names) | provided | OWN
    offenders = []
    for path in code_files():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])  # fmt: skip
            offenders += [f"{path.relative_to(FUNCTIONS)}: {name}" for name in names if name.split(".")[0] not in allowed]
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
LAYER_MODULES = {"core-data-science": "pandas,numpy,dateutil", "ml-libraries": "sklearn,scipy,joblib,threadpoolctl", "aws-utilities": "boto3,botocore,aws_lambda_powertools"}


@pytest.mark.parametrize("spec", template.functions(__import__("lambda_build.config", fromlist=["load"]).load()), ids=lambda s: s.logical_id)
def test_each_handler_imports_with_only_its_layers(spec):
    module = spec.handler.rsplit(".", 1)[0]
    blocked = ",".join(mods for layer, mods in LAYER_MODULES.items() if layer not in spec.layers)
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKER, module, blocked or "-"], cwd=FUNCTIONS, capture_output=True, text=True,
        env={"POWERTOOLS_METRICS_NAMESPACE": "Test", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]


def test_the_api_loads_neither_pandas_nor_sklearn():
    """The read path answers from DynamoDB alone: a cold start without the data-science imports."""
    completed = subprocess.run([sys.executable, "-c", BLOCKER, "predictions.api", "pandas,numpy,sklearn,scipy,joblib"], cwd=FUNCTIONS,
                               capture_output=True, text=True, env={"POWERTOOLS_METRICS_NAMESPACE": "T", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]


def test_the_light_functions_really_avoid_the_ml_layer():
    completed = subprocess.run([sys.executable, "-c", BLOCKER, "data_validation.app", "sklearn,scipy,joblib"], cwd=FUNCTIONS,
                               capture_output=True, text=True, env={"POWERTOOLS_METRICS_NAMESPACE": "T", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert completed.returncode == 0
    failing = subprocess.run([sys.executable, "-c", BLOCKER, "predictions.app", "sklearn"], cwd=FUNCTIONS,
                             capture_output=True, text=True, env={"POWERTOOLS_METRICS_NAMESPACE": "T", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert failing.returncode != 0 and "sklearn is not in this function's layers" in failing.stderr
