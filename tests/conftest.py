"""Fixtures shared by the whole suite: the layer tooling's config and the built layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings as hypothesis_settings
from lambda_build.offline.emulator import REGION, arn

REPO_ROOT = Path(__file__).resolve().parents[1]

# Lambda sets these before a handler module is imported (Powertools reads them once, at import);
# so does the suite, here, before any test module imports a handler, whatever the test order.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ItemPredictionTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "item-prediction")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

# The dev venv holds pyarrow (statsforecast, a yardstick of scripts/bench_accuracy.py, needs it),
# which makes pandas store strings in Arrow; the Lambda layers have no pyarrow. Tests run what
# Lambda runs: Python-backed strings.
pd.options.mode.string_storage = "python"

# Property tests explore new random inputs on a developer's machine; in CI (CI=true) they replay
# one fixed sequence, so a landing cannot hinge on the luck of the draw.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def run_layers_cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the layer tooling's command line as users do (manage-layers.sh execs exactly this)."""
    completed = subprocess.run(
        [sys.executable, "-m", "lambda_build", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"lambda_build {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed


@dataclass
class FakeContext:
    """The Lambda context of a handler called in-process (what Powertools reads from it)."""

    function_name: str = "test"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"

    @property
    def invoked_function_arn(self) -> str:
        return arn("lambda", f"function:{self.function_name}")


def create_predictions_table(name: str) -> None:
    """The predictions table, keyed and billed as template.yaml declares it, in the active moto mock."""
    import boto3
    from lambda_build.template import load_template

    properties = load_template()["Resources"]["PredictionsTable"]["Properties"]
    boto3.client("dynamodb").create_table(
        TableName=name, **{key: properties[key] for key in ("BillingMode", "KeySchema", "AttributeDefinitions")}
    )


@pytest.fixture
def moto_aws(monkeypatch):
    """moto's in-process AWS, with test credentials and no endpoint from the shell (a kept local
    emulator's AWS_ENDPOINT_URL would send the clients there instead)."""
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def layer_config():
    from lambda_build import config

    return config.load()


@pytest.fixture(scope="session")
def built_layers(layer_config):
    """The three layers built for the default architecture (cached: a no-op when up to date)."""
    run_layers_cli("build", "all")
    return layer_config


@pytest.fixture
def layer_copy(built_layers, tmp_path, monkeypatch):
    """A private copy of the built layers (hard links) that a test may break without harm.

    Files are hard links to the real build: replace a file (``replace_file``), never write into it.
    """
    destination = tmp_path / "build"
    shutil.copytree(built_layers.build_dir / "layers", destination / "layers", copy_function=os.link)
    monkeypatch.setenv("ITEM_PREDICTION_BUILD_DIR", str(destination))
    return destination


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new inode, leaving any hard-linked original untouched."""
    path.unlink()
    path.write_bytes(data)
