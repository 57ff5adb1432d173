"""What deploy.sh needs from Python: the exact ``sam deploy`` command, a credentials check, the
stack's outputs and a smoke test.

The command is composed here, not in the shell script, because ``--parameter-overrides`` on the
command line replaces the environment's ``parameter_overrides`` from ``samconfig.toml`` instead
of adding to them: the environment's own overrides (log retention, ...) are carried over.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass

from . import config as configmod
from .config import REPO_ROOT

EVENTS = REPO_ROOT / "events"
SAMCONFIG = REPO_ROOT / "samconfig.toml"
SAM = ".tools/sam/bin/sam"


@dataclass(frozen=True)
class Target:
    """Where one deploy goes: resolved once from the flags, samconfig.toml and layers.toml."""

    environment: str
    stack: str
    region: str
    architecture: str
    overrides: tuple[str, ...]  # the environment's parameter_overrides from samconfig.toml


class TargetError(ValueError):
    """A flag that names no environment or architecture of this project; one line for the user."""


def _one_of(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def resolve(environment: str, stack: str | None = None, region: str | None = None, arch: str | None = None) -> Target:
    """The environments are samconfig.toml's sections with deploy settings; the architectures
    and the default one are layers.toml's."""
    samconfig = tomllib.loads(SAMCONFIG.read_text())
    environments = [
        name for name, section in samconfig.items() if name != "default" and isinstance(section, dict) and "deploy" in section
    ]
    if environment not in environments:
        raise TargetError(f"--environment must be {_one_of(environments)}")
    layers = configmod.load()
    architecture = arch or layers.default_architecture
    if architecture not in layers.architectures:
        raise TargetError(f"--arch must be one of {', '.join(layers.architectures)}")
    section = samconfig[environment]["deploy"]["parameters"]
    return Target(
        environment=environment,
        stack=stack or section.get("stack_name") or f"item-prediction-{environment}",
        region=region or section["region"],
        architecture=architecture,
        overrides=tuple(shlex.split(section.get("parameter_overrides", ""))),
    )


def sam_deploy_command(target: Target, *, rollback: bool, guided: bool = False, confirm: bool = True) -> list[str]:
    """The ``sam deploy`` argv: the environment's config, its overrides plus ours (ours win)."""
    ours = {"Environment": target.environment, "Architecture": target.architecture}
    overrides = [item for item in target.overrides if item.split("=", 1)[0] not in ours]
    overrides += [f"{key}={value}" for key, value in ours.items()]
    command = [
        SAM,
        "deploy",
        "--config-env",
        target.environment,
        "--stack-name",
        target.stack,
        "--region",
        target.region,
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        *overrides,
    ]
    if not rollback:
        command.append("--disable-rollback")
    if guided:
        command.append("--guided")
    if not confirm:
        command.append("--no-confirm-changeset")
    return command


def credentials_problem(region: str | None = None) -> str | None:
    """None when boto3 finds credentials; else one line saying what is missing."""
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None:
        return (
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or use an OIDC role in CI (or run ./deploy.sh --dry-run / --local)"
        )
    if not session.region_name:
        return "no AWS region: pass --region or set AWS_REGION"
    return None


def stack_outputs(stack: str, region: str) -> dict[str, str]:
    import boto3

    stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


# A no-op event per pipeline function: each takes its skip path (nothing read or written), so the
# invocation proves that the function and its layers load and run on the deployed runtime.
SMOKE_EVENTS = {
    "DataValidation": lambda bucket: {"bucket": bucket, "key": "smoke-test/not-a-sales-file.txt"},
    "FeatureEngineering": lambda bucket: {"step": "plan", "skipped": True, "reason": "smoke test", "bucket": bucket},
    "Predictions": lambda bucket: {"step": "shard", "skipped": True, "reason": "smoke test", "bucket": bucket},
}


def _invoke(lam, function_name: str, event: dict) -> tuple[dict, str | None]:
    response = lam.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read() or b"{}")
    return payload, response.get("FunctionError")


def smoke(stack: str, region: str, *, lam=None, opener=urllib.request.urlopen) -> list[str]:
    """Invoke each function with a sample event and call the API; return the problems found."""
    import boto3

    outputs = stack_outputs(stack, region)
    lam = lam or boto3.client("lambda", region_name=region)
    problems = []
    for function, make_event in SMOKE_EVENTS.items():
        payload, error = _invoke(lam, f"{stack}-{function}", make_event(outputs.get("DataBucketName", "")))
        if error or payload.get("skipped") is not True:
            problems.append(f"{function}: {error or 'unexpected answer'}: {json.dumps(payload)[:300]}")
    event = json.loads((EVENTS / "api_get_predictions.json").read_text())
    payload, error = _invoke(lam, f"{stack}-PredictionsApi", event)
    if error or payload.get("statusCode") not in (200, 404):
        problems.append(f"PredictionsApi: {error or 'unexpected answer'}: {json.dumps(payload)[:300]}")
    url = outputs.get("PredictionsApiUrl")
    if not url:
        problems.append("the stack has no PredictionsApiUrl output")
    else:
        try:
            opener(url.rstrip("/") + event["rawPath"], timeout=10).close()  # the sample event's route
        except urllib.error.HTTPError as exc:  # 403 with IAM auth and no signature is the expected answer
            if exc.code not in (403, 404):
                problems.append(f"API {url}: HTTP {exc.code}")
        except OSError as exc:
            problems.append(f"API {url}: {exc}")
    return problems


def _print_command(args: argparse.Namespace, target: Target) -> int:
    """The ``sam deploy`` command, one argument per line, for deploy.sh's mapfile."""
    rollback = args.rollback or target.environment != "dev"
    print("\n".join(sam_deploy_command(target, rollback=rollback, guided=args.guided, confirm=not args.yes)))
    return 0


def _print_target(args: argparse.Namespace, target: Target) -> int:
    print(f"{target.stack} {target.region} {target.architecture}")
    return 0


def _check_credentials(args: argparse.Namespace, target: Target) -> int:
    problem = credentials_problem(target.region)
    if problem:
        print(f"deploy.sh: error: {problem}", file=sys.stderr)
        return 2
    return 0


def _print_outputs(args: argparse.Namespace, target: Target) -> int:
    for key, value in stack_outputs(target.stack, target.region).items():
        print(f"{key:<32}{value}")
    return 0


def _smoke_test(args: argparse.Namespace, target: Target) -> int:
    problems = smoke(target.stack, target.region)
    for line in problems:
        print(f"smoke test: {line}", file=sys.stderr)
    print("smoke test passed" if not problems else "smoke test FAILED")
    return 1 if problems else 0


# deploy.sh's helper commands: name -> what runs it (its exit status is the command's).
COMMANDS = {
    "command": _print_command,
    "target": _print_target,
    "check-credentials": _check_credentials,
    "outputs": _print_outputs,
    "smoke": _smoke_test,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_build.deploy", description="deploy.sh's helpers")
    parser.add_argument("command", choices=tuple(COMMANDS))
    parser.add_argument("--environment", default="dev", help="a samconfig.toml environment (dev, staging, prod)")
    parser.add_argument("--stack-name")
    parser.add_argument("--region")
    parser.add_argument("--arch")
    parser.add_argument("--rollback", action="store_true", help="roll back a failed deploy (always for staging and prod)")
    parser.add_argument("--guided", action="store_true")
    parser.add_argument("--yes", action="store_true", help="do not ask to confirm the changeset")
    args = parser.parse_args(argv)
    try:
        target = resolve(args.environment, args.stack_name, args.region, args.arch)
    except (TargetError, KeyError, configmod.ConfigError) as exc:
        print(f"deploy.sh: error: {exc}", file=sys.stderr)
        return 2
    return COMMANDS[args.command](args, target)


if __name__ == "__main__":
    sys.exit(main())
