"""What deploy.sh needs from Python: a credentials check, the stack's outputs and a smoke test."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from .config import REPO_ROOT

EVENTS = REPO_ROOT / "events"


def credentials_problem() -> str | None:
    """None when boto3 finds credentials; else one line saying what is missing."""
    import boto3

    session = boto3.session.Session()
    if session.get_credentials() is None:
        return "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use an OIDC role in CI (or run ./deploy.sh --dry-run / --local)"
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
    "FeatureEngineering": lambda bucket: {"skipped": True, "reason": "smoke test", "bucket": bucket},
    "Predictions": lambda bucket: {"skipped": True, "reason": "smoke test", "bucket": bucket},
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
            opener(f"{url.rstrip('/')}/predictions/ITEM-000", timeout=10).close()
        except urllib.error.HTTPError as exc:  # 403 with IAM auth and no signature is the expected answer
            if exc.code not in (403, 404):
                problems.append(f"API {url}: HTTP {exc.code}")
        except OSError as exc:
            problems.append(f"API {url}: {exc}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_build.deploy")
    parser.add_argument("command", choices=("check-credentials", "outputs", "smoke"))
    parser.add_argument("--stack-name")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    if args.command == "check-credentials":
        problem = credentials_problem()
        if problem:
            print(f"deploy.sh: error: {problem}", file=sys.stderr)
            return 2
        return 0
    if args.command == "outputs":
        for key, value in stack_outputs(args.stack_name, args.region).items():
            print(f"{key:<32}{value}")
        return 0
    problems = smoke(args.stack_name, args.region)
    for line in problems:
        print(f"smoke test: {line}", file=sys.stderr)
    print("smoke test passed" if not problems else "smoke test FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
