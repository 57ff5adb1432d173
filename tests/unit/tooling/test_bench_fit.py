"""scripts/bench_fit.py end to end: both ways fit, the edges computed here are used at or under
scikit-learn's binning subsample, and the two models predict the same."""

import subprocess
import sys

from ...conftest import REPO_ROOT
from .scripts import run_json


def test_bench_fit_compares_the_two_binnings_and_finds_the_same_model():
    report = run_json("bench_fit.py", "--rows", "10000", "--repeats", "1")
    (row,) = report["sizes"]
    assert 9_000 < row["training_rows"] < 11_000
    assert row["binned_columns"] > 0, "columns with more than 255 distinct values are binned here"
    assert row["same_predictions"] is True
    assert row["edges_here_s"] > 0 and row["scikit_learn_s"] > 0


def test_bench_fit_refuses_a_bad_size_in_one_line():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_fit.py", "--rows", "10,000"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and "each from 10,000 to 2,000,000" in completed.stderr
