"""The scale benchmark end to end at a tiny size: M5-shaped data through the real offline runner
(build, emulator, stack, the Lambda-like sandbox), its per-stage figures against the template's
memory sizes, the next week uploaded on the kept stack, the yardstick on the same file, and the
projection. No timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import REPO_ROOT

pytestmark = [pytest.mark.layers, pytest.mark.slow]


def test_the_scale_benchmark_runs_a_tiny_size_through_the_real_runner(built_layers):
    command = [sys.executable, "scripts/bench_scale.py", "--rows", "20000", "--days", "365", "--format", "json"]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    (size,) = report["sizes"]
    assert size["failure"] is None and size["rows_in"] == size["input"]["rows"] > 15_000
    stages = {stage["function"]: stage for stage in size["stages"]}
    assert {"DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction"} <= set(stages)
    assert stages["DataValidationFunction"]["memory_size_mb"] == 1024 and stages["PredictionsFunction"]["memory_size_mb"] == 3008
    assert all(0 < stage["peak_mb"] < stage["memory_size_mb"] and stage["gb_seconds"] > 0 for stage in stages.values())
    assert size["transitions"]["standard"] >= 4 and size["cost_usd"]["total"] > size["cost_usd"]["lambda"] > 0
    assert report["yardstick"]["rows"] == size["input"]["rows"] and report["ratios"]["compute_vs_yardstick"] > 0
    weekly = size["weekly"]  # the next week, uploaded to the same dataset on the kept stack
    assert weekly["failure"] is None and weekly["rows_in"] == weekly["input"]["rows"] == 7 * size["input"]["series"]
    assert weekly["compute_s"] > 0 and "weekly_upload_20000_vs_full" in report["ratios"]
    assert [item["rows"] for item in report["projections"]] == [30_490 * 1_941, 304_900 * 1_941]
