"""The stack on the emulator: created from template.yaml with SAM's own translator, its functions
run from their built artifacts in the Lambda-like sandbox, their logs shipped to CloudWatch Logs."""

from __future__ import annotations

import copy
import io
import json
import sys
import threading
import time
from pathlib import Path

from .. import config as configmod
from .. import template as templatemod
from ..config import REPO_ROOT
from ..package import zip_into
from ..tools import BuildError
from .emulator import ACCOUNT, REGION, Emulator
from .errors import TaskFailed
from .sandbox import Invocation, LocalFunction

SAM_BUILD = REPO_ROOT / ".aws-sam" / "build"


_CLIENTS = threading.Lock()


def boto(service: str):
    """A client (made under a lock: boto3's default session is not safe to share while creating)."""
    import boto3

    with _CLIENTS:
        return boto3.client(service)


def zip_folder(folder: Path) -> bytes:
    """A built function's artifact, as ``sam package`` uploads it (fast compression: it stays local)."""
    buffer = io.BytesIO()
    zip_into(buffer, folder, compresslevel=1)
    return buffer.getvalue()


def _stack_exists(cfn, stack: str) -> bool:
    try:
        cfn.describe_stacks(StackName=stack)
        return True
    except cfn.exceptions.ClientError:
        return False


def _packaged_template(config: configmod.Config, stack: str) -> dict:
    """template.yaml with the built function and layer artifacts uploaded, as ``sam package`` does."""
    s3 = boto("s3")
    artifacts = f"{stack}-artifacts"
    s3.create_bucket(Bucket=artifacts)
    document = copy.deepcopy(templatemod.load_template())
    for logical_id, resource in document["Resources"].items():
        props = resource.setdefault("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            built = SAM_BUILD / logical_id
            if not built.is_dir():
                raise BuildError(f"{logical_id} is not built: run ./build.sh")
            s3.put_object(Bucket=artifacts, Key=f"{logical_id}.zip", Body=zip_folder(built))
            props["CodeUri"] = f"s3://{artifacts}/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            name = Path(props["ContentUri"]).name
            with open(config.layer_zip(config.layer(name)), "rb") as handle:
                s3.upload_fileobj(handle, artifacts, f"{name}.zip")
            props["ContentUri"] = f"s3://{artifacts}/{name}.zip"
        elif "DefinitionUri" in props:
            props["Definition"] = json.loads((REPO_ROOT / props.pop("DefinitionUri")).read_text())
    document["Globals"]["Function"].pop("CodeUri", None)
    return document


def deploy_template(config: configmod.Config, stack: str, parameters: dict[str, str]) -> dict:
    """Create the stack on the emulator unless it exists (a kept one); logical id -> physical id."""
    from samtranslator.translator.transform import transform

    cfn = boto("cloudformation")
    if not _stack_exists(cfn, stack):

        class NoManagedPolicies:
            def load(self):
                return {}

        translated = transform(
            _packaged_template(config, stack), {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}, NoManagedPolicies()
        )
        cfn.create_stack(
            StackName=stack,
            TemplateBody=json.dumps(translated),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        )
        apply_dropped_settings(translated, stack_resources(stack))
    return stack_resources(stack)


def apply_dropped_settings(template: dict, resources: dict) -> None:
    """What the emulator's CloudFormation accepts but does not apply, applied by its own API: the
    bucket's versioning (the ingest ledger, version pinning and retraction rely on version ids)
    and the table's time to live. Without them the offline pipeline would not be the deployed one."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::Bucket" and props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            boto("s3").put_bucket_versioning(Bucket=resources[logical_id], VersioningConfiguration={"Status": "Enabled"})
        ttl = props.get("TimeToLiveSpecification") if resource["Type"] == "AWS::DynamoDB::Table" else None
        if ttl and ttl.get("Enabled"):
            boto("dynamodb").update_time_to_live(
                TableName=resources[logical_id], TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )


def stack_resources(stack: str) -> dict:
    """A created stack's logical id -> physical id (ClientError when there is no such stack)."""
    resources = boto("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    return {item["LogicalResourceId"]: item.get("PhysicalResourceId") for item in resources if item.get("LogicalResourceId")}


class LocalStack:
    """The deployed stack's functions run locally: ``invoke`` is the runner's Lambda.

    Each function has a pool of execution environments: an idle one is reused (warm), a busy one
    makes another start (cold), as Lambda scales out under a Map's concurrency.
    """

    def __init__(
        self, config: configmod.Config, resources: dict, emulator: Emulator, work_dir: Path, *, overrides: dict | None = None
    ) -> None:
        """``overrides``: environment variables over the stack's, per logical id (``*``: every function)."""
        self.config, self.resources, self.emulator, self.work_dir = config, resources, emulator, work_dir
        self.overrides = overrides or {}
        self.specs = {spec.logical_id: spec for spec in templatemod.functions(config)}
        self.by_name = {resources[logical_id]: logical_id for logical_id in self.specs if logical_id in resources}
        self.idle: dict[str, list[LocalFunction]] = {}
        self.started: list[tuple[str, LocalFunction]] = []
        self.counts: dict[str, int] = {}
        self.reports: list[dict] = []
        self.lock = threading.Lock()

    def logical_id(self, function_name: str) -> str:
        """A function name or ARN (as the definition has it) -> the template's logical id."""
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        return self.by_name.get(name, name)

    def _environment(self, logical_id: str) -> LocalFunction:
        with self.lock:
            if self.idle.get(logical_id):
                return self.idle[logical_id].pop()
            number = self.counts[logical_id] = self.counts.get(logical_id, 0) + 1  # its own work folder
        spec = self.specs[logical_id]
        conf = boto("lambda").get_function_configuration(FunctionName=self.resources[logical_id])
        environment = {
            **conf.get("Environment", {}).get("Variables", {}),
            **self.overrides.get("*", {}),
            **self.overrides.get(logical_id, {}),
            **self.emulator.environ(),
        }
        layers = {name: self.config.layer_output(self.config.layer(name)) for name in spec.layers}
        function = LocalFunction(
            conf["FunctionName"],
            spec.handler,
            SAM_BUILD / logical_id,
            layers,
            python_version=self.config.python_version,
            memory_mb=conf["MemorySize"],
            timeout_s=conf["Timeout"],
            environment=environment,
            work_dir=self.work_dir / logical_id / str(number),
        )
        with self.lock:
            self.started.append((logical_id, function))
        return function

    def run(self, logical_id: str, event, *, shard=None) -> Invocation:
        """One invocation on an idle (or new) environment; its REPORT line printed and recorded."""
        function = self._environment(logical_id)
        try:
            invocation = function.invoke(event)
        finally:
            with self.lock:
                self.idle.setdefault(logical_id, []).append(function)
        ship_logs(function.log_group, function.log_stream, invocation.logs)
        print(f"    {invocation.report}" + (f"\t(shard {shard})" if shard is not None else ""), file=sys.stderr)
        with self.lock:
            self.reports.append(
                {
                    "function": logical_id,
                    "shard": shard,
                    "init_ms": invocation.init_ms,
                    "duration_ms": round(invocation.duration_ms, 1),
                    "max_memory_mb": invocation.max_memory_mb,
                    "memory_size_mb": invocation.memory_mb,
                    "error": invocation.error,
                    "log_group": function.log_group,
                    "durations_ms": step_durations(invocation.result),
                }
            )
        return invocation

    def invoke(self, function_name: str, payload):
        """The runner's ``invoke``: the function's result, or TaskFailed(errorType, the error as JSON)."""
        shard = payload.get("shard") if isinstance(payload, dict) else None
        invocation = self.run(self.logical_id(function_name), payload, shard=shard)
        if invocation.error:
            raise TaskFailed(invocation.error.get("errorType", "Unknown"), json.dumps(invocation.error))
        return invocation.result

    def stop(self) -> None:
        for _, function in self.started:
            function.stop()


def step_durations(result) -> dict | None:
    """The milliseconds per step a pipeline function reports in its output (``durations_ms``),
    or None (an error, the read API, a step that timed nothing)."""
    durations = result.get("durations_ms") if isinstance(result, dict) else None
    return durations if isinstance(durations, dict) else None


def ship_logs(group: str, stream: str, lines: list[str]) -> None:
    """Put ``lines`` into the emulator's CloudWatch Logs (group and stream made when missing)."""
    logs = boto("logs")
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    except logs.exceptions.ResourceNotFoundException:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines if line]
    if events:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
