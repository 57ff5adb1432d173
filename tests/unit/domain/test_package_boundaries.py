"""The functions' code package: small, and importing only the standard library, the layers'
packages and itself; the light functions never load the ml-libraries layer.

Independent of the layer tooling on purpose: the allowed packages are the layers' contents as
the architecture fixes them, so a new third-party import fails here before it fails in Lambda.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
MAX_CODE_BYTES = 1_000_000
LAYER_MODULES = {
    "core-data-science": {"pandas", "numpy", "dateutil", "six"},
    "ml-libraries": {"sklearn", "scipy", "joblib", "threadpoolctl", "narwhals", "cloudpickle"},
    "aws-utilities": {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "aws_lambda_powertools", "typing_extensions"},
}
OWN = {path.name for path in FUNCTIONS.iterdir() if (path / "__init__.py").exists()}
ML = ("sklearn", "scipy", "joblib")


def code_files() -> list[Path]:
    return [path for path in FUNCTIONS.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def test_the_code_package_is_at_most_1_mb():
    size = sum(path.stat().st_size for path in code_files())
    assert 10_000 < size <= MAX_CODE_BYTES, size


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_import_is_stdlib_a_layer_package_or_our_own():
    allowed = set(sys.stdlib_module_names) | set().union(*LAYER_MODULES.values()) | OWN
    offenders = {str(path.relative_to(FUNCTIONS)): sorted(imported_modules(path) - allowed) for path in code_files() if path.suffix == ".py"}
    assert {path: names for path, names in offenders.items() if names} == {}
    assert "pandas" in imported_modules(FUNCTIONS / "item_prediction" / "validation.py")  # the scan sees imports


LOADED = """
import importlib, json, sys
blocked = set(sys.argv[2].split(",")) - {""}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in this function's layers")
sys.meta_path.insert(0, Block())
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def load(module: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {"POWERTOOLS_METRICS_NAMESPACE": "Test", "POWERTOOLS_SERVICE_NAME": "test", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", LOADED, module, ",".join(blocked)], cwd=FUNCTIONS, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("module", ["data_validation.app", "feature_engineering.app"])
def test_the_light_functions_load_without_the_ml_layer(module):
    completed = load(module, ML)
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = set(__import__("json").loads(completed.stdout))
    assert "pandas" in loaded and not loaded & set(ML)


def test_the_api_loads_neither_pandas_nor_sklearn():
    completed = load("predictions.api", ("pandas", "numpy", *ML))
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_the_blocker_can_fail():
    """The check above is not vacuous: Predictions does need scikit-learn."""
    completed = load("predictions.app", ("sklearn",))
    assert completed.returncode != 0 and "sklearn is not in this function's layers" in completed.stderr
