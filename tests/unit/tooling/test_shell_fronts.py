"""build.sh and deploy.sh refuse a bad option with one line and exit 2, before announcing anything."""

from __future__ import annotations

import os
import subprocess

import pytest

from ...conftest import REPO_ROOT

ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=REPO_ROOT, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["./build.sh", "--arch", "sparc"], "build.sh: --arch sparc: unknown architecture (known: x86_64, arm64)"),
        (["./build.sh", "--arch=sparc"], "build.sh: --arch sparc: unknown architecture (known: x86_64, arm64)"),
        (["./build.sh", "--arch"], "build.sh: --arch needs a value: x86_64 or arm64"),
        (["./deploy.sh", "--environment"], "deploy.sh: --environment needs a value: dev, staging or prod"),
        (["./deploy.sh", "--environment", "--yes"], "deploy.sh: --environment needs a value: dev, staging or prod"),
        (["./deploy.sh", "--region"], "deploy.sh: --region needs a value"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(command, line):
    completed = run(*command)
    assert completed.returncode == 2
    assert completed.stderr.strip() == line, "one line: no bash line number, no build announced"
    assert completed.stdout == ""


def test_manage_layers_validate_refuses_an_unknown_layer_like_report():
    for command in ("validate", "report"):
        completed = run("scripts/manage-layers.sh", command, "nosuch")
        assert completed.returncode == 1 and completed.stderr.strip().startswith("error: unknown layer 'nosuch'"), command
