"""The part-writer benchmark runs end to end on a tiny case and reports both writers consistently."""

import subprocess
import sys

from ...conftest import REPO_ROOT
from .scripts import run_json


def test_bench_part_writer_reports_both_writers_with_the_ratio():
    report = run_json("bench_part_writer.py", "--shards", "3", "--chunks", "4", "--rows", "20", "--repeats", "1")
    assert (report["shards"], report["chunks"], report["appends"]) == (3, 4, 12)
    writers = report["writers"]
    assert list(writers) == ["footer_once", "reread_footer"]
    for result in writers.values():
        assert result["round_trip"] is True and result["row_groups"] == 4 and result["seconds"] > 0
    assert writers["footer_once"]["vs_footer_once"] == 1.0
    ratio = writers["reread_footer"]["seconds"] / writers["footer_once"]["seconds"]
    assert abs(writers["reread_footer"]["vs_footer_once"] - ratio) <= 0.01 + 0.01 * ratio


def test_bench_part_writer_refuses_a_bad_size_in_one_line():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_part_writer.py", "--shards", "0"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and "must be at least 1" in completed.stderr
