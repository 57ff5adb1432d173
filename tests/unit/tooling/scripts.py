"""Running a repository script the way a user does, for the benchmarks' end-to-end tests."""

import json
import subprocess
import sys

from ...conftest import REPO_ROOT


def run_json(script: str, *args: str) -> dict:
    """``scripts/<script> <args> --format json`` in a fresh interpreter: its JSON report (the
    process must exit 0; its stderr is shown when it does not)."""
    completed = subprocess.run(
        [sys.executable, f"scripts/{script}", *args, "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)
