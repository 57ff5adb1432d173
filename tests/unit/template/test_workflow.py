"""The GitHub Actions workflow: tests with the README's command, arm64 layers verified on arm64,
staging then prod behind an approval, OIDC roles and no stored AWS keys."""

from __future__ import annotations

import yaml
from lambda_build.config import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_pull_requests_run_the_test_command_build_and_size_report():
    workflow = load()
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key 'on' as True
    job = workflow["jobs"]["test-and-build"]
    commands = runs(job)
    assert "./scripts/test.sh" in commands and "./build.sh" in commands
    assert any("size-validation.py report --format json" in command for command in commands)
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in job["steps"])


def test_arm64_layers_are_built_and_verified_on_an_arm64_runner():
    job = load()["jobs"]["arm64-layers"]
    assert job["runs-on"].endswith("-arm")
    assert any("--arch arm64" in command and "--static-only" not in command for command in runs(job))


def test_staging_then_prod_behind_an_approval_with_oidc_roles():
    jobs = load()["jobs"]
    staging, prod = jobs["deploy-staging"], jobs["deploy-prod"]
    assert set(staging["needs"]) == {"test-and-build", "arm64-layers"} and prod["needs"] == "deploy-staging"
    assert "refs/heads/main" in staging["if"]
    assert staging["environment"] == "staging" and prod["environment"] == "production"
    for job, environment in ((staging, "staging"), (prod, "prod")):
        assert job["permissions"]["id-token"] == "write"
        credentials = next(
            step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/configure-aws-credentials")
        )
        assert "role-to-assume" in credentials["with"] and "aws-access-key-id" not in credentials["with"]
        assert any(command.startswith(f"./deploy.sh --environment {environment}") for command in runs(job))
    assert "AWS_SECRET_ACCESS_KEY" not in WORKFLOW.read_text()
