"""build.sh, the SAM CLI and the size gate, as CI runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lambda_build.offline.emulator import REGION

from ..conftest import REPO_ROOT

SAM = REPO_ROOT / ".tools" / "sam" / "bin" / "sam"
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def sam():
    if not SAM.exists():
        subprocess.run([str(REPO_ROOT / "scripts" / "bootstrap.sh"), "--with-sam", "--quiet"], check=True)
    return SAM


def gate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/size-validation.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
    )


def test_sam_validate_lint_passes(sam):
    completed = subprocess.run([str(sam), "validate", "--lint"], cwd=REPO_ROOT, capture_output=True, text=True, env=ENV)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "is a valid SAM Template" in completed.stdout + completed.stderr


@pytest.mark.layers
@pytest.mark.slow
def test_build_sh_builds_offline_and_prints_the_size_table(sam, built_layers):
    completed = subprocess.run(["./build.sh"], cwd=REPO_ROOT, capture_output=True, text=True, env=ENV)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "PredictionsFunction" in completed.stdout and "262,144,000" in completed.stdout
    for name in ("DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction", "PredictionsApiFunction"):
        artifact = REPO_ROOT / ".aws-sam" / "build" / name
        assert (artifact / "item_prediction" / "domain" / "validation.py").exists()
        assert any(artifact.rglob("*.cpython-313.pyc")), "function code ships hash-based bytecode"
    report = json.loads(gate("report", "--format", "json").stdout)
    assert all(item["code_source"] == "sam build" for item in report["functions"])


def _predictions(report: dict) -> dict:
    return next(item for item in report["functions"] if item["function"] == "PredictionsFunction")


def _add_file(layer_dir, size: int) -> None:
    with open(layer_dir / "python" / "ballast.bin", "wb") as handle:
        handle.truncate(size)  # sparse: Lambda counts its size, the disk does not pay for it


@pytest.mark.layers
def test_an_oversized_layer_fails_the_gate_naming_the_function(layer_copy):
    env = {"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}
    _add_file(layer_copy / "layers" / "ml-libraries", 100_000_000)
    completed = gate("validate", env=env)
    assert completed.returncode == 1
    lines = [line for line in completed.stderr.splitlines() if line.startswith("error: PredictionsFunction:")]
    assert len(lines) == 1, completed.stderr
    assert "is not smaller than the limit 262,144,000" in lines[0] and "largest: ballast.bin (ml-libraries) 100.0 MB" in lines[0]
    total = _predictions(json.loads(gate("report", "--format", "json", env=env).stdout))["total_bytes"]
    assert f"{total:,} bytes unzipped" in lines[0]
    assert not any("DataValidationFunction:" in line for line in completed.stderr.splitlines()), "it does not mount ml-libraries"


@pytest.mark.layers
@pytest.mark.slow
def test_build_sh_blocks_an_oversized_build_and_skip_validation_only_warns(sam, layer_copy):
    env = {**ENV, "ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}
    _add_file(layer_copy / "layers" / "ml-libraries", 100_000_000)
    blocked = subprocess.run(["./build.sh", "--functions-only"], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    assert blocked.returncode == 1
    (line,) = [line for line in blocked.stderr.splitlines() if line.startswith("error: PredictionsFunction:")]
    assert "is not smaller than the limit 262,144,000" in line and "ballast.bin (ml-libraries) 100.0 MB" in line
    assert blocked.stderr.strip().splitlines()[-1].startswith("build.sh: error: size gate failed")
    warned = subprocess.run(
        ["./build.sh", "--functions-only", "--skip-validation"], cwd=REPO_ROOT, capture_output=True, text=True, env=env
    )
    assert warned.returncode == 0 and "WARNING: --skip-validation" in warned.stderr


@pytest.mark.layers
@pytest.mark.parametrize(("over", "fails"), [(0, True), (-1, False)])
def test_exactly_the_limit_fails_one_byte_less_passes(layer_copy, over, fails):
    env = {"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}
    before = _predictions(json.loads(gate("report", "--target", "functions", "--format", "json", env=env).stdout))
    _add_file(layer_copy / "layers" / "ml-libraries", before["limit_bytes"] - before["total_bytes"] + over)
    report = json.loads(gate("report", "--target", "functions", "--format", "json", env=env).stdout)
    assert _predictions(report)["total_bytes"] == 262_144_000 + over
    limit_lines = [
        line for line in report["violations"] if line.startswith("PredictionsFunction:") and "not smaller than" in line
    ]
    assert bool(limit_lines) is fails


@pytest.mark.layers
def test_the_layers_budget_follows_the_architecture_they_were_built_for(layer_copy, layer_config):
    """arm64's own budget applies to arm64 layers, the default budget to the default's."""
    from ..conftest import replace_file

    env = {"ITEM_PREDICTION_BUILD_DIR": str(layer_copy)}
    arm64, default = layer_config.budgets_for("arm64"), layer_config.budgets_for(None)
    assert arm64["all_layers_unzipped"] > default["all_layers_unzipped"], "the test needs arm64's budget to be the larger"
    before = json.loads(gate("report", "--target", "layers", "--format", "json", env=env).stdout)["layers_total_bytes"]
    _add_file(layer_copy / "layers" / "ml-libraries", default["all_layers_unzipped"] - before + 1)  # one byte over the default's
    over = json.loads(gate("report", "--target", "layers", "--format", "json", env=env).stdout)
    assert over["architecture"] == layer_config.default_architecture
    assert over["violations"] == [
        f"all layers: {default['all_layers_unzipped'] + 1:,} bytes unzipped is over the budget {default['all_layers_unzipped']:,}"
    ]
    for layer in layer_config.layers:  # the same bytes, recorded as built for arm64
        info_path = layer_copy / "layers" / f"{layer.name}.build.json"
        info = json.loads(info_path.read_text())
        replace_file(info_path, json.dumps({**info, "architecture": "arm64"}).encode())
    as_arm64 = json.loads(gate("report", "--target", "layers", "--format", "json", env=env).stdout)
    assert as_arm64["architecture"] == "arm64" and as_arm64["violations"] == []
    assert as_arm64["budgets"]["all_layers_unzipped"] == arm64["all_layers_unzipped"]


@pytest.mark.layers
def test_scripts_run_from_any_python3_in_the_project_environment(built_layers):
    """``python3 scripts/size-validation.py ...`` as the users' guide types it: an interpreter
    outside .venv (here the one .venv was made from) re-runs the script in .venv."""
    from pathlib import Path

    outside = Path(sys.base_prefix) / "bin" / "python3"
    assert outside.exists() and Path(sys.prefix) != Path(sys.base_prefix)
    gate_report = subprocess.run(
        [str(outside), "scripts/size-validation.py", "report", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert gate_report.returncode == 0, gate_report.stderr[-2000:]
    assert json.loads(gate_report.stdout)["violations"] == []
    layer = subprocess.run(
        [str(outside), "scripts/layer-utils.py", "report", "--layer", "aws-utilities", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert layer.returncode == 0, layer.stderr[-2000:]
    assert list(json.loads(layer.stdout)["layers"]) == ["aws-utilities"]
    wrong = subprocess.run(
        [str(outside), "scripts/layer-utils.py", "report", "--layer"], cwd=REPO_ROOT, capture_output=True, text=True, env=ENV
    )
    assert wrong.returncode == 2 and wrong.stderr.strip() == "error: --layer needs a layer name or 'all'"
