"""The weekly-parts benchmark runs end to end on a small dataset (its own moto server): the predict
read of the window's parts gives the rows of reading every part with fewer downloads, and the
upload catalog reads only the new index on the second Plan."""

import subprocess
import sys

from ...conftest import REPO_ROOT
from .scripts import run_json


def test_bench_weekly_parts_reads_fewer_parts_for_the_same_rows():
    report = run_json("bench_weekly_parts.py", "--rows", "100000", "--weeks", "12", "--repeats", "1")
    (result,) = report["results"]
    assert result["weeks"] == 12 and result["parts"] == 13 and result["same_rows"] is True and result["rows_read"] > 0
    assert result["every_part"]["gets"] == 14  # the prior and each of the 13 parts
    assert result["window_parts"]["gets"] <= 8  # the history and the weeks before the 5-week window skipped
    assert result["plan_index_reads"] == {"every_index": [12, 13], "catalog": [12, 1]}
    assert result["same_training_rows"] is True and min(result["training_read_ms"].values()) > 0


def test_bench_weekly_parts_refuses_a_bad_week_count_in_one_line():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_weekly_parts.py", "--weeks", "0"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and "--weeks must be 1 to 150" in completed.stderr
