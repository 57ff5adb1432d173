"""The put_items benchmark runs end to end on a tiny case (its own moto server) and reports both
write paths consistently, with the same items landed by each."""

import subprocess
import sys

from ...conftest import REPO_ROOT
from .scripts import run_json


def test_bench_put_items_reports_both_paths_and_the_same_items():
    report = run_json("bench_put_items.py", "--items", "3", "60", "--repeats", "2", "--latency-ms", "1")
    assert (report["latency_ms"], report["repeats"]) == (1.0, 2) and report["writers"] >= 2
    assert [result["items"] for result in report["results"]] == [3, 60]
    for result in report["results"]:
        assert result["same_items"] is True
        for path in ("put_items", "batch_writer"):
            assert len(result["runs_ms"][path]) == 2 and all(ms > 0 for ms in result["runs_ms"][path])
        ratio = result["median_ms"]["batch_writer"] / result["median_ms"]["put_items"]
        assert abs(result["speedup"] - ratio) <= 0.01 + 0.01 * ratio


def test_bench_put_items_refuses_a_bad_count_in_one_line():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_put_items.py", "--items", "0"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and "must be at least 1" in completed.stderr
