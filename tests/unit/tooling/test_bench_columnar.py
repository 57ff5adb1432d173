"""The intermediates benchmark runs end to end on a tiny feature set and reports consistent numbers."""

import subprocess
import sys

from ...conftest import REPO_ROOT
from .scripts import run_json


def test_bench_columnar_reports_every_format_with_ratios_against_gzip_csv():
    report = run_json("bench_columnar.py", "--rows", "300", "--repeats", "1")
    formats = report["formats"]
    assert list(formats) == ["csv_gzip", "parquet_snappy", "parquet_zstd", "parquet_snappy_dictionary_ids"]
    assert report["rows"] >= 300
    base = formats["csv_gzip"]
    for result in formats.values():
        assert result["round_trip"] is True and result["bytes"] > 0
        assert result["vs_csv_gzip"]["bytes"] == round(base["bytes"] / result["bytes"], 2)
    assert formats["csv_gzip"]["vs_csv_gzip"] == {"write_s": 1.0, "read_s": 1.0, "total_s": 1.0, "bytes": 1.0}


def test_bench_columnar_refuses_a_bad_row_count_in_one_line():
    completed = subprocess.run(
        [sys.executable, "scripts/bench_columnar.py", "--rows", "0"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and "--rows and --repeats must be at least 1" in completed.stderr
