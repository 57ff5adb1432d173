"""The main job, offline: ``./deploy.sh --local``.

Checks the options, builds (cached), starts a local AWS emulator (moto server on localhost) or
reuses the one a ``--keep-running`` run left, creates the stack from ``template.yaml`` (SAM's own
translator, then the emulator's CloudFormation), uploads sample data or the user's file, and runs
``statemachine/pipeline.asl.json`` with the offline Step Functions runner (offline/asl.py), each
function's built artifact in the Lambda-like sandbox on its real layers. The pipeline's Distributed
Map runs the planned shards in parallel (``--concurrency``, default the CPU count): each shard's
FeatureEngineering and Predictions run in their own Lambda-like processes, each invocation printing
its REPORT line labelled with its shard. ``--query`` asks the
read API of a kept stack; ``--logs`` runs ``sam logs`` against it; ``--stop`` stops it.

Exit codes: 0 done; 1 the pipeline (or the build) failed; 2 bad arguments; 3 the file was refused
(quarantined as a whole, a mapping error, or skipped by validation: nothing new was predicted).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from . import config as configmod
from . import template as templatemod
from .config import REPO_ROOT
from .offline import asl, checks, definitions, report
from .offline.emulator import REGION, STATE_DIR, Emulator
from .offline.events import api_request, object_created
from .offline.services import aws_services
from .offline.stack import LocalStack, boto, deploy_template, ship_logs, stack_resources
from .tools import BuildError, progress

PROG = "./deploy.sh --local"
STACK = "item-prediction-local"
PIPELINE = "PipelineStateMachine"
API_HANDLER = "predictions.api.handler"
SQS_SEND = "arn:aws:states:::sqs:sendMessage"
# A debugging and test hook: JSON {"<logical id>" or "*": {"VAR": "value"}} over the functions' environment.
ENV_HOOK = "ITEM_PREDICTION_LOCAL_ENV"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run the whole pipeline offline on a local AWS emulator: validate the upload, plan the run (which series "
            "shards changed, train or predict each), build features and predict every planned shard in a Distributed "
            "Map (parallel Lambda-like processes, one REPORT line per invocation labelled with its shard), aggregate. "
            "With --keep-running, later runs upload to the same stack: an incremental file re-runs only the shards it "
            "touches, the same file again changes nothing."
        ),
        epilog="exit codes: 0 done, 1 the pipeline failed, 2 bad arguments, 3 the file was refused",
    )
    parser.add_argument("--input", help="a sales CSV (optionally .gz) to run instead of generated sample data")
    parser.add_argument("--mapping", help="a JSON column mapping for --input (see README: Configuration)")
    parser.add_argument(
        "--plan",
        metavar="FILE",
        help="a plan file (future prices and promotions, the sales file's columns without quantity, same mapping): "
        "uploaded to raw/<dataset>/plan/<name> before the sales file; the forecast uses it instead of assuming the "
        "last price and no promotion",
    )
    parser.add_argument(
        "--dataset", default="sales", help="dataset name: raw/<dataset>/ (default sales; 'default' uploads directly under raw/)"
    )
    parser.add_argument(
        "--horizon", type=int, default=0, help=f"periods to predict, 1 to {checks.MAX_HORIZON} (default 0: 14 daily, 8 weekly)"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="retrain every shard's model (the event's mode: retrain), not only those due"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="shards run at once by the Distributed Map (the template's ShardConcurrency; default 0: the CPU count)",
    )
    parser.add_argument("--items", type=int, default=4, help="sample data: items (default 4)")
    parser.add_argument("--stores", type=int, default=2, help="sample data: stores (default 2)")
    parser.add_argument("--periods", type=int, default=400, help="sample data: days (default 400)")
    parser.add_argument("--seed", type=int, default=7, help="sample data: random seed")
    parser.add_argument("--stack-name", default=STACK)
    parser.add_argument("--skip-build", action="store_true", help="use what is built (.build, .aws-sam)")
    parser.add_argument("--keep-running", action="store_true", help="leave the emulator and stack up; later runs reuse them")
    parser.add_argument("--stop", action="store_true", help="stop a kept emulator and exit")
    parser.add_argument(
        "--query", metavar="ITEM", help="ask the kept stack's read API for ITEM's predictions (with --store, --dataset)"
    )
    parser.add_argument("--store", help="with --query: the store of the series")
    parser.add_argument("--logs", action="store_true", help="the kept stack's logs (sam logs; --name FUNCTION for one function)")
    parser.add_argument("--name", help="with --logs: one function's logical id, e.g. PredictionsFunction")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--report", metavar="FILE", help="write the run's forecast report (one HTML page) to FILE")
    return parser


# ---- the pipeline run --------------------------------------------------------------------------
def _upload(args: argparse.Namespace, bucket: str) -> tuple[str, str | None, int]:
    checks.functions_on_path()
    from .sample_data import generate_sales

    s3 = boto("s3")
    if args.input:
        body, name = Path(args.input).read_bytes(), Path(args.input).name
        if args.mapping:
            s3.put_object(Bucket=bucket, Key=f"config/mappings/{args.dataset}.json", Body=Path(args.mapping).read_bytes())
    else:
        body, name = (
            generate_sales(items=args.items, stores=args.stores, periods=args.periods, seed=args.seed).content,
            "sample.csv",
        )
    if args.plan:  # before the sales file: its run's forecast reads the newest plan file
        plan_key = f"raw/{args.dataset}/plan/{Path(args.plan).name}"
        progress(f"uploading the plan file to s3://{bucket}/{plan_key}")
        s3.put_object(Bucket=bucket, Key=plan_key, Body=Path(args.plan).read_bytes())
    key = f"raw/{name}" if args.dataset == "default" else f"raw/{args.dataset}/{name}"  # raw/default/ is reserved
    progress(f"uploading {len(body):,} bytes to s3://{bucket}/{key}")
    return key, s3.put_object(Bucket=bucket, Key=key, Body=body).get("VersionId"), len(body)


def _on_state(event: dict) -> None:
    if event["event"] == "StateEntered":
        progress(f"state {event['state']}")
    elif event["event"] == "Retry":
        progress(f"  retry {event['attempt']} of {event['state']} after {event['error']} in {event['delay']:.1f}s")
    elif event["event"] == "Caught":
        progress(f"  {event['state']} failed ({event['error']}): on to {event['next']}")


def _describe_failure(
    exc: asl.ExecutionFailed, definition: dict, stack: LocalStack, dead_letter: dict | None, machine_log: str | None
) -> dict:
    """The state that failed first, its error and message, and where the full record is."""
    first = exc.caught or {"state": exc.state, "error": exc.error, "cause": exc.cause}
    function = definition["States"].get(first["state"], {}).get("Parameters", {}).get("FunctionName")
    log_group = f"/aws/lambda/{stack.resources[stack.logical_id(function)]}" if function else None
    return {
        "state": first["state"],
        "error": first["error"],
        "cause": report.error_message(first["cause"]),
        "ended_in": exc.state,
        "dead_letter": dead_letter,
        "log_group": log_group,
        "state_machine_log_group": machine_log,
    }


def _log_execution(machine_log: str | None, machine: str, name: str, exc: asl.ExecutionFailed) -> None:
    """The execution's ERROR-level events in the state machine's log group, as Step Functions logs them."""
    if machine_log:
        events = [{"type": "TaskFailed", "state": exc.caught["state"], "details": exc.caught}] if exc.caught else []
        events.append({"type": "ExecutionFailed", "state": exc.state, "details": {"error": exc.error, "cause": exc.cause}})
        ship_logs(machine_log, f"states/{machine}/{name}", [json.dumps({"execution_name": name, **event}) for event in events])


def execute(stack: LocalStack, resources: dict, event: dict, *, concurrency: int = 0) -> dict:
    """Run the pipeline's definition: each step's result, the final result, the failure if any.
    ``concurrency``: the Distributed Map's shards at once (0: the CPU count)."""
    template = templatemod.load_template()
    definition = definitions.load(template, PIPELINE, resources, {"ShardConcurrency": str(concurrency)})
    machine_log = definitions.log_group(template, PIPELINE, resources)
    steps: dict = {}
    dead_letter: dict = {}
    services = aws_services()
    send = services[SQS_SEND]

    def invoke(function_name: str, payload):
        result = stack.invoke(function_name, payload)
        if not (isinstance(payload, dict) and payload.get("step") == "shard"):  # a shard's result goes to S3
            steps[stack.logical_id(function_name)] = result
        return result

    def send_dead_letter(params: dict) -> dict:
        response = send(params)
        dead_letter.update(queue=params["QueueUrl"], message_id=response.get("MessageId"))
        return response

    name = str(uuid.uuid4())
    try:
        result = asl.run(
            definition,
            event,
            invoke=invoke,
            services={**services, SQS_SEND: send_dead_letter},
            execution_name=name,
            on_state=_on_state,
        )
        return {"steps": steps, "result": result, "failure": None}
    except asl.ExecutionFailed as exc:
        _log_execution(machine_log, resources.get(PIPELINE, PIPELINE), name, exc)
        return {
            "steps": steps,
            "result": None,
            "failure": _describe_failure(exc, definition, stack, dead_letter or None, machine_log),
        }


def _validation(validated: dict | None, bucket: str) -> dict | None:
    """The validation report's counts, whenever validation ran (keys from its result)."""
    if not validated or not validated.get("report_key"):
        return None
    document = json.loads(boto("s3").get_object(Bucket=bucket, Key=validated["report_key"])["Body"].read())
    summary = {k: document.get(k) for k in ("rows_in", "rows_clean", "rows_quarantined", "rules", "file_reason", "file_detail")}
    return {**summary, "report_key": validated["report_key"], "quarantine_key": validated.get("quarantine_key")}


def _shown_forecasts(table: str, dataset: str, result: dict) -> set[str]:
    """The forecast ids the run's generation shows (its shard pointers), or the run's own forecast."""
    if not result.get("generation"):
        return {result["forecast_id"]} if result.get("forecast_id") else set()
    checks.functions_on_path()
    from item_prediction.aws import table_keys

    pages = (
        boto("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": table_keys.generation_pk(dataset, result["generation"])}},
            ConsistentRead=True,
        )
    )
    return {item["forecast_id"]["S"] for page in pages for item in page["Items"]}


def _predictions(table: str, dataset: str, result: dict | None) -> list[dict]:
    """The predictions the run's generation shows (items of other datasets or runs on a kept stack left out)."""
    if not result or result.get("skipped"):
        return []
    from boto3.dynamodb.types import TypeDeserializer

    checks.functions_on_path()
    from item_prediction.aws import series_item, table_keys

    shown, rows, attribute = _shown_forecasts(table, dataset, result), [], TypeDeserializer().deserialize
    for page in boto("dynamodb").get_paginator("scan").paginate(TableName=table):
        for raw in page["Items"]:  # a series' item: its whole forecast (series_item)
            item = {name: attribute(value) for name, value in raw.items()}
            if item["sk"] != table_keys.SERIES_SK or item.get("dataset", dataset) != dataset:
                continue
            if item.get("forecast_id") not in shown:
                continue
            forecast = series_item.decode(item)
            rows += [
                {"item_id": item["item_id"], "store_id": item["store_id"], "date": day, "prediction": float(value)}
                for day, value in zip(forecast["dates"], forecast["prediction"], strict=True)
            ]
    return sorted(rows, key=lambda row: (row["item_id"], row["store_id"], row["date"]))


def _save_report(path: str, predicted: dict | None, bucket: str) -> str | None:
    """The run's forecast report (the page the Aggregate step wrote and CURRENT names) copied to ``path``; None without one."""
    if not predicted or not predicted.get("report_key"):
        return None
    target = Path(path).resolve()
    target.write_bytes(boto("s3").get_object(Bucket=bucket, Key=predicted["report_key"])["Body"].read())
    return str(target)


def _overrides(args: argparse.Namespace) -> dict:
    hooked = json.loads(os.environ.get(ENV_HOOK) or "{}")
    return {
        **hooked,
        "*": {"FORECAST_HORIZON": str(args.horizon), **hooked.get("*", {})},
    }  # the horizon applies to a kept stack too


def plan_summary(result: dict | None) -> dict | None:
    """What the run's forecast assumed of the future (the Aggregate step's ``plan`` and ``plan_key``)."""
    if not result or "plan" not in result:
        return None
    return {"used": result["plan"], "key": result.get("plan_key")}


def run_main_job(args: argparse.Namespace, emulator: Emulator, *, kept: bool) -> dict:
    config = configmod.load()
    os.environ.update(emulator.environ())
    progress(
        f"deploying {args.stack_name} from template.yaml to the emulator at {emulator.endpoint}"
        + (" (kept: reused)" if emulator.reused else "")
    )
    resources = deploy_template(config, args.stack_name, {"Environment": "dev", "ForecastHorizon": str(args.horizon)})
    bucket, table = resources["DataBucket"], resources["PredictionsTable"]
    key, version, size = _upload(args, bucket)
    stack = LocalStack(config, resources, emulator, STATE_DIR / "functions", overrides=_overrides(args))
    try:
        event = {**object_created(bucket, key, version, size), **({"mode": "retrain"} if args.retrain else {})}
        run = execute(stack, resources, event, concurrency=args.concurrency)
    finally:
        stack.stop()
    summary = {
        "stack": args.stack_name,
        "endpoint": emulator.endpoint,
        "bucket": bucket,
        "table": table,
        "dataset": args.dataset,
        "input_key": key,
        "kept": kept,
        "reused": emulator.reused,
        "invocations": stack.reports,
        **run,
    }
    summary["plan"] = plan_summary(run["result"])
    summary["validation"] = _validation(run["steps"].get("DataValidationFunction"), bucket)
    summary["predictions"] = _predictions(table, args.dataset, run["result"])
    if args.report:
        summary["report_file"] = _save_report(args.report, run["steps"].get("PredictionsFunction"), bucket)
    summary["query"] = report.query_command(summary) if kept else None
    summary["exit_code"] = report.exit_code(summary)
    from .size_gate import measure

    summary["sizes"] = measure(config, "functions")["functions"]
    return summary


# ---- the kept stack: query, logs, stop ---------------------------------------------------------
def _kept(emulator: Emulator, option: str) -> None:
    if emulator.kept() is None:
        raise checks.ArgumentError(
            f"{option} needs the stack a --keep-running run left up: run ./deploy.sh --local --keep-running first"
        )
    emulator.start()
    os.environ.update(emulator.environ())


def query(args: argparse.Namespace, emulator: Emulator) -> int:
    """Call the read API's handler in the sandbox against the kept stack; print its JSON answer."""
    _kept(emulator, "--query")
    config = configmod.load()
    from botocore.exceptions import ClientError

    try:
        resources = stack_resources(args.stack_name)
    except ClientError:
        raise checks.ArgumentError(f"--query: the kept emulator has no stack {args.stack_name}") from None
    stack = LocalStack(config, resources, emulator, STATE_DIR / "functions")
    api = next(spec.logical_id for spec in stack.specs.values() if spec.handler == API_HANDLER)
    try:
        invocation = stack.run(api, api_request(args.dataset, args.query, args.store))
    finally:
        stack.stop()
    if invocation.error:
        print(
            f"error: the read API failed: {invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}",
            file=sys.stderr,
        )
        return 1
    status = invocation.result.get("statusCode")
    print(json.dumps(json.loads(invocation.result.get("body") or "null"), indent=2))
    print(
        f"HTTP {status} from {API_HANDLER} (GET {api_request(args.dataset, args.query, args.store)['rawPath']})", file=sys.stderr
    )
    return 0 if status == 200 else 1


def logs(args: argparse.Namespace, emulator: Emulator) -> int:
    """``sam logs`` (from .tools/sam) against the kept emulator, with its endpoint and credentials."""
    _kept(emulator, "--logs")
    command = [str(REPO_ROOT / ".tools" / "sam" / "bin" / "sam"), "logs", "--stack-name", args.stack_name, "--region", REGION]
    command += ["--name", args.name] if args.name else []
    return subprocess.run(command, env={**os.environ, **emulator.environ(), "SAM_CLI_TELEMETRY": "0"}).returncode


def _check_combinations(args: argparse.Namespace) -> None:
    if args.store and not args.query:
        raise checks.ArgumentError("--store goes with --query")
    if args.name and not args.logs:
        raise checks.ArgumentError("--name goes with --logs")
    if args.report and (args.query or args.logs):
        raise checks.ArgumentError("--report goes with a pipeline run, not with --query or --logs")
    if args.query:
        checks.check_dataset(args.dataset)


def _run(args: argparse.Namespace, emulator: Emulator) -> int:
    if not args.skip_build:
        progress("building (cached): ./build.sh")
        subprocess.run([str(REPO_ROOT / "build.sh")], check=True, stdout=subprocess.DEVNULL)
    reused = emulator.start()
    kept = args.keep_running or reused
    progress(f"local AWS emulator {'reused' if reused else 'started'} at {emulator.endpoint}")
    try:
        summary = run_main_job(args, emulator, kept=kept)
    finally:
        emulator.keep() if kept else emulator.stop()
    print(json.dumps(summary, indent=2, default=str) if args.format == "json" else report.render(summary))
    return summary["exit_code"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emulator = Emulator()
    try:
        if args.stop:
            print("local emulator stopped" if emulator.stop() else "no local emulator was running")
            return 0
        _check_combinations(args)
        if args.logs:
            return logs(args, emulator)
        if args.query:
            return query(args, emulator)
        checks.check(args)
    except checks.ArgumentError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return report.EXIT_ARGUMENTS
    try:
        return _run(args, emulator)
    except subprocess.CalledProcessError:
        print("error: the build failed (run ./build.sh to see why)", file=sys.stderr)
    except (BuildError, configmod.ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return report.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
