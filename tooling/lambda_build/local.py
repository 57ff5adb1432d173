"""The main job, offline: ``./deploy.sh --local``.

Builds (cached), starts a local AWS emulator (moto server on localhost), creates the stack's
resources from ``template.yaml`` itself (SAM's own translator, then the emulator's
CloudFormation), uploads sample data or the user's file, and runs the pipeline the way the
state machine does (``statemachine/pipeline.asl.json``: order, retries, catch), each function's
built artifact running in the Lambda-like local runner on its real layers. Log lines go to the
emulator's CloudWatch Logs, where ``sam logs`` finds them.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote_plus

from . import config as configmod
from . import template as templatemod
from .config import REPO_ROOT
from .local_runner import Invocation, LocalFunction
from .tools import BuildError, progress

STACK = "item-prediction-local"
STATE_DIR = REPO_ROOT / ".local-aws"
SAM_BUILD = REPO_ROOT / ".aws-sam" / "build"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


# ---- the emulator ----------------------------------------------------------------------------
class Emulator:
    """A moto server on localhost, started (and stopped) by us; ``keep`` leaves it running."""

    def __init__(self, state_dir: Path = STATE_DIR) -> None:
        self.state_file = state_dir / "server.json"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"  # 'localhost', not 127.0.0.1: CloudFormation's S3 template URLs need it

    def _alive(self, port: int) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2).read()
            return True
        except OSError:
            return False

    def start(self, *, reuse: bool) -> bool:
        """Start, or reuse a kept server; True when an existing server (and its state) was reused."""
        if reuse and self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            if self._alive(saved["port"]):
                self.port = saved["port"]
                return True
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.state_file.parent / "moto.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._alive(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BuildError(f"the local AWS emulator did not start (see {self.state_file.parent / 'moto.log'})")
            time.sleep(0.2)
        self.state_file.write_text(json.dumps({"port": self.port, "pid": self.process.pid}))
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        elif self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            try:
                os.kill(saved["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.state_file.unlink(missing_ok=True)

    def environ(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}


def _boto(service: str):
    import boto3

    return boto3.client(service)


# ---- the stack, from template.yaml -------------------------------------------------------------
def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def deploy_template(config: configmod.Config, stack: str, parameters: dict[str, str]) -> dict:
    """Translate template.yaml with SAM's translator and create it with the emulator's CloudFormation.

    Function code and layers are the built artifacts (.aws-sam/build, .build/layers), uploaded to
    an artifacts bucket as ``sam package`` would. Returns logical id -> physical id.
    """
    from samtranslator.translator.transform import transform

    cfn = _boto("cloudformation")
    try:
        cfn.describe_stacks(StackName=stack)
        exists = True
    except cfn.exceptions.ClientError:
        exists = False
    if not exists:
        s3 = _boto("s3")
        artifacts = f"{stack}-artifacts"
        s3.create_bucket(Bucket=artifacts)
        document = copy.deepcopy(templatemod.load_template())
        for logical_id, resource in document["Resources"].items():
            props = resource.setdefault("Properties", {})
            if resource["Type"] == "AWS::Serverless::Function":
                built = SAM_BUILD / logical_id
                if not built.is_dir():
                    raise BuildError(f"{logical_id} is not built: run ./build.sh")
                s3.put_object(Bucket=artifacts, Key=f"{logical_id}.zip", Body=_zip_folder(built))
                props["CodeUri"] = f"s3://{artifacts}/{logical_id}.zip"
            elif resource["Type"] == "AWS::Serverless::LayerVersion":
                name = Path(props["ContentUri"]).name
                with open(config.layer_zip(config.layer(name)), "rb") as handle:
                    s3.upload_fileobj(handle, artifacts, f"{name}.zip")
                props["ContentUri"] = f"s3://{artifacts}/{name}.zip"
            elif "DefinitionUri" in props:
                props["Definition"] = json.loads((REPO_ROOT / props.pop("DefinitionUri")).read_text())
        document["Globals"]["Function"].pop("CodeUri", None)

        class NoManagedPolicies:
            def load(self):
                return {}

        translated = transform(document, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}, NoManagedPolicies())
        cfn.create_stack(
            StackName=stack, TemplateBody=json.dumps(translated),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        )  # fmt: skip
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    return {item["LogicalResourceId"]: item.get("PhysicalResourceId") for item in resources if item.get("LogicalResourceId")}


# ---- functions and the state machine ------------------------------------------------------------
class LocalStack:
    """The deployed stack's functions, run locally, with their logs sent to CloudWatch Logs."""

    def __init__(self, config: configmod.Config, resources: dict, emulator: Emulator, work_dir: Path) -> None:
        self.config = config
        self.resources = resources
        self.emulator = emulator
        self.work_dir = work_dir
        self.specs = {spec.logical_id: spec for spec in templatemod.functions(config)}
        self.by_name = {resources[logical_id]: logical_id for logical_id in self.specs if logical_id in resources}
        self.functions: dict[str, LocalFunction] = {}
        self.reports: list[dict] = []

    def function(self, logical_id: str) -> LocalFunction:
        if logical_id not in self.functions:
            spec = self.specs[logical_id]
            conf = _boto("lambda").get_function_configuration(FunctionName=self.resources[logical_id])
            environment = {**conf.get("Environment", {}).get("Variables", {}), **self.emulator.environ()}
            layers = {name: self.config.layer_output(self.config.layer(name)) for name in spec.layers}
            self.functions[logical_id] = LocalFunction(
                conf["FunctionName"], spec.handler, SAM_BUILD / logical_id, layers,
                python_version=self.config.python_version, memory_mb=conf["MemorySize"], timeout_s=conf["Timeout"],
                environment=environment, work_dir=self.work_dir / logical_id,
            )  # fmt: skip
        return self.functions[logical_id]

    def invoke(self, logical_id: str, event: dict) -> Invocation:
        function = self.function(logical_id)
        invocation = function.invoke(event)
        self._ship_logs(function, invocation)
        print(f"    {invocation.report}", file=sys.stderr)
        self.reports.append({"function": logical_id, "init_ms": invocation.init_ms, "duration_ms": round(invocation.duration_ms, 1),
                             "max_memory_mb": invocation.max_memory_mb, "error": invocation.error})  # fmt: skip
        return invocation

    def _ship_logs(self, function: LocalFunction, invocation: Invocation) -> None:
        logs = _boto("logs")
        try:
            logs.create_log_stream(logGroupName=function.log_group, logStreamName=function.log_stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        except logs.exceptions.ResourceNotFoundException:
            logs.create_log_group(logGroupName=function.log_group)
            logs.create_log_stream(logGroupName=function.log_group, logStreamName=function.log_stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in invocation.logs if line]
        if events:
            logs.put_log_events(logGroupName=function.log_group, logStreamName=function.log_stream, logEvents=events)

    def stop(self) -> None:
        for function in self.functions.values():
            function.stop()


class StateMachineError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


def run_state_machine(definition: dict, substitutions: dict[str, str], payload: dict, stack: LocalStack, *, sleep=time.sleep) -> dict:
    """Run an Amazon States Language definition (the subset the pipeline uses) against local functions.

    Task states call ``lambda:invoke`` (the local runner) or ``sqs:sendMessage`` (the emulator);
    Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate) and Catch (ResultPath) behave
    as in Step Functions; Choice (IsPresent, StringEquals), Succeed and Fail end or branch.
    """
    text = json.dumps(definition)
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    definition = json.loads(text)
    state_name, data = definition["StartAt"], payload
    while True:
        state = definition["States"][state_name]
        progress(f"state {state_name}")
        kind = state["Type"]
        if kind == "Succeed":
            return data
        if kind == "Fail":
            raise StateMachineError(state.get("Error", "Failed"), state.get("Cause", ""))
        if kind == "Choice":
            state_name = next((choice["Next"] for choice in state["Choices"] if _matches(choice, data)), state.get("Default"))
            if state_name is None:
                raise StateMachineError("States.NoChoiceMatched", json.dumps(data)[:200])
            continue
        if kind != "Task":
            raise BuildError(f"state {state_name}: type {kind} is not supported by the local runner")
        attempts: dict[int, int] = {}
        while True:
            try:
                result = _task(state, data, stack)
                break
            except StateMachineError as exc:
                rule_index, rule = next(
                    ((i, r) for i, r in enumerate(state.get("Retry", [])) if exc.error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]),
                    (None, None),
                )  # fmt: skip
                if rule is not None and attempts.get(rule_index, 0) < rule.get("MaxAttempts", 3):
                    delay = rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** attempts.get(rule_index, 0)
                    attempts[rule_index] = attempts.get(rule_index, 0) + 1
                    progress(f"  retry {attempts[rule_index]} of {state_name} after {exc.error} in {delay:.0f}s")
                    sleep(delay)
                    continue
                catcher = next((c for c in state.get("Catch", []) if exc.error in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]), None)
                if catcher is None:
                    raise
                data = {**data, catcher.get("ResultPath", "$.error").removeprefix("$."): {"Error": exc.error, "Cause": exc.cause}}
                state_name = catcher["Next"]
                result = None
                break
        if result is not None:
            data = result
            if state.get("End"):
                return data
            state_name = state["Next"]


def _matches(choice: dict, data: dict) -> bool:
    key = choice["Variable"].removeprefix("$.")
    if "IsPresent" in choice:
        return (key in data) == choice["IsPresent"]
    if "StringEquals" in choice:
        return data.get(key) == choice["StringEquals"]
    raise BuildError(f"choice {choice} is not supported by the local runner")


def _task(state: dict, data: dict, stack: LocalStack) -> dict:
    params = state["Parameters"]
    if state["Resource"].endswith(":lambda:invoke"):
        logical_id = stack.by_name.get(params["FunctionName"].rsplit(":", 1)[-1]) or params["FunctionName"]
        invocation = stack.invoke(logical_id, data if params.get("Payload.$") == "$" else params.get("Payload", {}))
        if invocation.error:
            raise StateMachineError(invocation.error["errorType"], invocation.error["errorMessage"])
        return invocation.result  # OutputPath $.Payload: the function's own result
    if state["Resource"].endswith(":sqs:sendMessage"):
        _boto("sqs").send_message(QueueUrl=params["QueueUrl"].replace("https://sqs.us-east-1.amazonaws.com", stack.emulator.endpoint), MessageBody=json.dumps(data, default=str))
        return data
    raise BuildError(f"task resource {state['Resource']} is not supported by the local runner")


# ---- the main job -----------------------------------------------------------------------------
def _object_created(bucket: str, key: str, version: str | None) -> dict:
    event = json.loads((REPO_ROOT / "events" / "object_created.json").read_text())
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update({"key": quote_plus(key, safe="/"), "version-id": version})  # URL-encoded, as S3 sends it
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def run_main_job(args: argparse.Namespace, emulator: Emulator) -> dict:
    sys.path.insert(0, str(REPO_ROOT / "functions"))
    from item_prediction.sample_data import generate_sales

    config = configmod.load()
    os.environ.update(emulator.environ())
    progress(f"deploying {args.stack_name} from template.yaml to the emulator at {emulator.endpoint}")
    resources = deploy_template(config, args.stack_name, {"Environment": "dev", "ForecastHorizon": str(args.horizon or 0)})
    bucket, table = resources["DataBucket"], resources["PredictionsTable"]
    s3 = _boto("s3")
    dataset = args.dataset
    if args.input:
        body = Path(args.input).read_bytes()
        name = Path(args.input).name
        if args.mapping:
            s3.put_object(Bucket=bucket, Key=f"config/mappings/{dataset}.json", Body=Path(args.mapping).read_bytes())
    else:
        sample = generate_sales(items=args.items, stores=args.stores, periods=args.periods, seed=args.seed)
        body, name = sample.content, "sample.csv"
    key = f"raw/{dataset}/{name}"
    progress(f"uploading {len(body):,} bytes to s3://{bucket}/{key}")
    version = s3.put_object(Bucket=bucket, Key=key, Body=body).get("VersionId")

    stack = LocalStack(config, resources, emulator, STATE_DIR / "functions")
    definition = json.loads((REPO_ROOT / "statemachine" / "pipeline.asl.json").read_text())
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    substitutions = {
        "DataValidationFunctionArn": arn + resources["DataValidationFunction"],
        "FeatureEngineeringFunctionArn": arn + resources["FeatureEngineeringFunction"],
        "PredictionsFunctionArn": arn + resources["PredictionsFunction"],
        "DeadLetterQueueUrl": resources["DeadLetterQueue"],
    }
    try:
        result = run_state_machine(definition, substitutions, _object_created(bucket, key, version), stack)
        failure = None
    except StateMachineError as exc:
        result, failure = None, str(exc)
    finally:
        stack.stop()
    summary = {"stack": args.stack_name, "endpoint": emulator.endpoint, "bucket": bucket, "table": table, "input_key": key,
               "invocations": stack.reports, "failure": failure, "result": result}  # fmt: skip
    if result:
        from item_prediction.settings import Settings
        from item_prediction.steps import output_keys

        report_key = output_keys(Settings(bucket=bucket, table=table), dataset, key)["report_key"]
        report = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
        summary["validation"] = {k: report.get(k) for k in ("rows_in", "rows_clean", "rows_quarantined", "rules", "file_reason", "file_detail")}
        summary["validation"]["report_key"] = report_key
        items = _boto("dynamodb").scan(TableName=table)["Items"]
        summary["predictions"] = sorted(
            ({"item_id": i["item_id"]["S"], "store_id": i["store_id"]["S"], "date": i["date"]["S"], "prediction": float(i["prediction"]["N"])} for i in items),
            key=lambda row: (row["item_id"], row["store_id"], row["date"]),
        )  # fmt: skip
    from .size_gate import measure

    summary["sizes"] = measure(config, "functions")["functions"]
    return summary


def render(summary: dict) -> str:
    lines = []
    if summary.get("failure"):
        lines.append(f"PIPELINE FAILED: {summary['failure']} (input and error sent to the dead-letter queue)")
    if "validation" in summary:
        v = summary["validation"]
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(v["rules"].items(), key=lambda item: -item[1])) or "none"
        lines += ["", f"Validation: {v['rows_in']:,} rows in, {v['rows_clean']:,} clean, {v['rows_quarantined']:,} quarantined ({rules})"]
        if v.get("file_reason"):
            lines.append(f"  the whole file was quarantined: {v['file_reason']}: {v.get('file_detail') or ''}".rstrip(": "))
        if v.get("rows_quarantined"):
            lines.append(f"  each quarantined row and its reasons: s3://{summary['bucket']}/quarantine/...; report: s3://{summary['bucket']}/{v['report_key']}")
    result = summary.get("result") or {}
    if result.get("skipped"):
        lines.append(f"Nothing to predict: {result.get('reason', 'skipped')}")
    if "metrics" in result:
        m = result["metrics"]
        verdict = f"beats it by {m['mae_improvement']:.1%} on MAE" if m["beats_baseline"] else f"does NOT beat it (MAE {m['mae_improvement']:.1%})"
        lines += [
            f"Backtest over the last {m['horizon']} periods: model MAE {m['model']['mae']:.3f}, WAPE {m['model']['wape']:.3f}; "
            f"seasonal naive MAE {m['seasonal_naive']['mae']:.3f}, WAPE {m['seasonal_naive']['wape']:.3f}: the model {verdict}",
            f"Predictions: {result['predictions_written']:,} written for {result['series']} series x {result['horizon']} periods (model {result['model_version']})",
        ]
    if summary.get("predictions"):
        lines.append(f"  {'item_id':<12}{'store_id':<12}{'date':<12}{'prediction':>11}")
        for row in summary["predictions"][:8]:
            lines.append(f"  {row['item_id']:<12}{row['store_id']:<12}{row['date']:<12}{row['prediction']:>11.2f}")
    lines += ["", f"{'function':<28}{'init ms':>10}{'duration ms':>13}{'max MB':>8}"]
    for item in summary["invocations"]:
        init = f"{item['init_ms']:.0f}" if item["init_ms"] else "-"
        lines.append(f"{item['function']:<28}{init:>10}{item['duration_ms']:>13,.0f}{item['max_memory_mb']:>8}")
    lines += ["", f"{'function + layers':<28}{'bytes':>16}{'limit':>16}{'headroom':>10}"]
    for item in summary["sizes"]:
        lines.append(f"{item['function']:<28}{item['total_bytes']:>16,}{item['limit_bytes']:>16,}{item['headroom_percent']:>9}%")
    first = (summary.get("predictions") or [{"item_id": "ITEM-000", "store_id": "STORE-00"}])[0]
    lines += [
        "",
        f"Query: GET /predictions/{first['item_id']}?store={first['store_id']}&from=YYYY-MM-DD&to=YYYY-MM-DD "
        f"(DynamoDB {summary['table']}: pk = ITEM#{first['item_id']}#STORE#{first['store_id']}, sk = DATE#YYYY-MM-DD)",
        f"Logs:  AWS_ENDPOINT_URL={summary['endpoint']} sam logs --stack-name {summary['stack']} --region us-east-1 "
        + ("--tail   (emulator kept running: ./deploy.sh --local --stop stops it)" if summary.get("kept") else "(rerun with --keep-running to read them)"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./deploy.sh --local", description="Run the whole pipeline offline on a local AWS emulator.")
    parser.add_argument("--input", help="a sales CSV (optionally .gz) to run instead of generated sample data")
    parser.add_argument("--mapping", help="a JSON column mapping for --input (see README: Configuration)")
    parser.add_argument("--dataset", default="sales", help="dataset name: raw/<dataset>/ (default sales)")
    parser.add_argument("--horizon", type=int, default=0, help="periods to predict (default: 14 daily, 8 weekly)")
    parser.add_argument("--items", type=int, default=4, help="sample data: items (default 4)")
    parser.add_argument("--stores", type=int, default=2, help="sample data: stores (default 2)")
    parser.add_argument("--periods", type=int, default=400, help="sample data: days (default 400)")
    parser.add_argument("--seed", type=int, default=7, help="sample data: random seed")
    parser.add_argument("--stack-name", default=STACK)
    parser.add_argument("--skip-build", action="store_true", help="use what is built (.build, .aws-sam)")
    parser.add_argument("--keep-running", action="store_true", help="leave the emulator running with its state (for sam logs)")
    parser.add_argument("--stop", action="store_true", help="stop a kept emulator and exit")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    emulator = Emulator()
    if args.stop:
        emulator.stop()
        print("local emulator stopped")
        return 0
    if args.mapping and not args.input:
        parser.error("--mapping goes with --input")
    for option, path in (("--input", args.input), ("--mapping", args.mapping)):
        if path and not Path(path).is_file():
            parser.error(f"{option} {path}: no such file")
    try:
        if not args.skip_build:
            progress("building (cached): ./build.sh")
            subprocess.run([str(REPO_ROOT / "build.sh")], check=True, stdout=subprocess.DEVNULL)
        reused = emulator.start(reuse=args.keep_running)
        progress(f"local AWS emulator {'reused' if reused else 'started'} at {emulator.endpoint}")
        try:
            summary = run_main_job(args, emulator)
            summary["kept"] = args.keep_running
        finally:
            if not args.keep_running:
                emulator.stop()
    except subprocess.CalledProcessError:
        print("error: the build failed (run ./build.sh to see why)", file=sys.stderr)
        return 1
    except (BuildError, configmod.ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=str) if args.format == "json" else render(summary))
    return 1 if summary.get("failure") else 0


if __name__ == "__main__":
    sys.exit(main())
