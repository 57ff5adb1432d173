"""deploy.sh up to the AWS calls: a clear stop without credentials, and the exact sam deploy command."""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib

import pytest

from ..conftest import REPO_ROOT

NO_AWS = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
    "HOME": "/nonexistent",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def deploy(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["./deploy.sh", *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env or NO_AWS, timeout=600)


def test_without_credentials_it_stops_with_one_clear_line():
    completed = deploy("--environment", "staging")
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip() and not line.startswith("==>")]
    assert lines == [lines[0]] and lines[0].startswith("deploy.sh: error: no AWS credentials")
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("environment", "rollback"),
    [("dev", False), ("staging", True), ("prod", True)],
)
def test_dry_run_prints_the_exact_sam_deploy_command(environment, rollback):
    completed = deploy("--dry-run", "--environment", environment, "--arch", "arm64")
    assert completed.returncode == 0
    argv = shlex.split(completed.stdout.strip())
    assert argv[:2] == [".tools/sam/bin/sam", "deploy"]
    flags = dict(zip(argv[2::1], argv[3::1], strict=False))
    assert flags["--config-env"] == environment and flags["--stack-name"] == f"item-prediction-{environment}"
    assert flags["--region"] == "us-east-1"
    assert "--no-fail-on-empty-changeset" in argv
    start = argv.index("--parameter-overrides") + 1
    end = next((i for i in range(start, len(argv)) if argv[i].startswith("--")), len(argv))
    overrides = argv[start:end]
    # the environment's own overrides from samconfig.toml survive (a command-line value replaces them)
    configured = shlex.split(
        tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())[environment]["deploy"]["parameters"]["parameter_overrides"]
    )
    assert overrides == [item for item in configured if not item.startswith("Environment=")] + [
        f"Environment={environment}",
        "Architecture=arm64",
    ]
    assert ("--disable-rollback" not in argv) is rollback
    assert ("--no-confirm-changeset" in argv) is False


def test_staging_and_prod_keep_their_log_retention():
    for environment, days in (("staging", "90"), ("prod", "365")):
        argv = shlex.split(deploy("--dry-run", "--environment", environment).stdout)
        assert f"LogRetentionDays={days}" in argv
    assert "--no-confirm-changeset" in shlex.split(deploy("--dry-run", "--environment", "prod", "--yes").stdout)


def test_the_default_architecture_comes_from_layers_toml():
    from lambda_build import config

    argv = shlex.split(deploy("--dry-run").stdout)
    assert f"Architecture={config.load().default_architecture}" in argv
    bad = deploy("--dry-run", "--arch", "sparc")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("deploy.sh: error: --arch must be one of")


def test_overrides_and_bad_options():
    completed = deploy("--dry-run", "--stack-name", "mine", "--region", "eu-west-1", "--enable-rollback")
    argv = shlex.split(completed.stdout)
    assert argv[argv.index("--stack-name") + 1] == "mine" and argv[argv.index("--region") + 1] == "eu-west-1"
    assert "--disable-rollback" not in argv
    bad = deploy("--environment", "qa")
    assert bad.returncode == 2 and "must be dev, staging or prod" in bad.stderr
    assert deploy("--help").stdout.startswith("Usage: ./deploy.sh")
