"""Checks a whole definition before anything runs: every state type, field, path, comparison and
resource the runner does not implement is named (``state X: field Y is not supported``)."""

from __future__ import annotations

from . import choice, paths
from .errors import UnsupportedDefinition

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SERVICES = {
    "arn:aws:states:::sqs:sendMessage",
    "arn:aws:states:::dynamodb:deleteItem",
    "arn:aws:states:::dynamodb:putItem",
    "arn:aws:states:::dynamodb:getItem",
    "arn:aws:states:::s3:getObject",
    "arn:aws:states:::s3:listObjectsV2",
    "arn:aws:states:::s3:putObject",
}
READERS = {"arn:aws:states:::s3:getObject", "arn:aws:states:::s3:listObjectsV2"}
WRITER = "arn:aws:states:::s3:putObject"
_IO = {"InputPath", "OutputPath"}
LIMITS = ("MaxConcurrency", "ToleratedFailurePercentage", "ToleratedFailureCount")  # each also as <name>Path
_RESULT = {"ResultSelector", "ResultPath", "Retry", "Catch"}
_FLOW = {"Next", "End"}
FIELDS = {
    "Task": {"Resource", "Parameters", "TimeoutSeconds", *_IO, *_RESULT, *_FLOW},
    "Pass": {"Parameters", "Result", "ResultPath", *_IO, *_FLOW},
    "Choice": {"Choices", "Default", *_IO},
    "Succeed": set(_IO),
    "Fail": {"Error", "Cause"},
    "Map": {
        "ItemProcessor",
        "ItemsPath",
        "ItemReader",
        "ItemSelector",
        *LIMITS,
        *(f"{key}Path" for key in LIMITS),
        "ResultWriter",
        *_IO,
        *_RESULT,
        *_FLOW,
    },
}
RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy", "Comment"}
CATCH_FIELDS = {"ErrorEquals", "ResultPath", "Next", "Comment"}
TOP_FIELDS = {"StartAt", "States", "Comment", "Version", "TimeoutSeconds"}


def validate(definition: dict) -> None:
    """Raise UnsupportedDefinition listing every problem in ``definition`` (nested Maps included)."""
    found = _machine(definition, "definition", top=True)
    if found:
        raise UnsupportedDefinition(found)


def resources(definition: dict) -> set[str]:
    """Every integration resource the definition calls (tasks, item readers, result writers)."""
    used = set()
    for state in definition.get("States", {}).values():
        used.add(state.get("Resource"))
        used.add(state.get("ItemReader", {}).get("Resource"))
        used.add(state.get("ResultWriter", {}).get("Resource"))
        if "ItemProcessor" in state:
            used |= resources(state["ItemProcessor"])
    return used - {None}


def _machine(machine: dict, where: str, *, top: bool) -> list[str]:
    allowed = TOP_FIELDS if top else {"StartAt", "States", "Comment", "ProcessorConfig"}
    found = [f"{where}: field {key} is not supported" for key in machine if key not in allowed]
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        return found + [f"{where}: States must name at least one state"]
    if machine.get("StartAt") not in states:
        found.append(f"{where}: StartAt {machine.get('StartAt')!r} is not a state")
    if top and "TimeoutSeconds" in machine:
        found += _positive_int(machine, "TimeoutSeconds", where)
    for name, state in states.items():
        found += _state(name, state, states)
    return found


def _state(name: str, state: dict, states: dict) -> list[str]:
    where = f"state {name}"
    kind = state.get("Type")
    if kind not in FIELDS:
        return [f"{where}: Type {kind!r} is not supported (supported: {', '.join(sorted(FIELDS))})"]
    found = [
        f"{where}: field {key} is not supported in a {kind} state"
        for key in state
        if key not in FIELDS[kind] | {"Type", "Comment"}
    ]
    found += _transition(state, states, where, kind)
    found += _paths(state, where)
    for key in ("Parameters", "ResultSelector", "ItemSelector"):
        if key in state:
            found += paths.template_problems(state[key], f"{where}: {key}")
    found += _retry(state.get("Retry", []), where) + _catch(state.get("Catch", []), states, where)
    if kind == "Task":
        found += _task(state, where)
    elif kind == "Choice":
        found += _choice(state, states, where)
    elif kind == "Map":
        found += _map(state, where)
    return found


def _transition(state: dict, states: dict, where: str, kind: str) -> list[str]:
    if kind not in ("Task", "Pass", "Map"):
        return []
    if ("Next" in state) == bool(state.get("End")):
        return [f"{where}: needs exactly one of Next or End: true"]
    if "Next" in state and state["Next"] not in states:
        return [f"{where}: Next {state['Next']!r} is not a state"]
    return []


def _paths(state: dict, where: str) -> list[str]:
    found = []
    for key in ("InputPath", "OutputPath", "ItemsPath", "ResultPath", *(f"{limit}Path" for limit in LIMITS)):
        if state.get(key) is not None:
            try:
                is_context, _ = paths.parse(state[key])
                if is_context and key == "ResultPath":
                    found.append(f"{where}: ResultPath cannot point into the context object")
            except ValueError as exc:
                found.append(f"{where}: {key} {exc}")
    return found


def _errors(rule: dict, where: str) -> list[str]:
    names = rule.get("ErrorEquals")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return [f"{where}: ErrorEquals must be a non-empty list of error names"]
    if "States.ALL" in names and len(names) > 1:
        return [f"{where}: States.ALL must be the only name in ErrorEquals"]
    return []


def _retry(rules: list, where: str) -> list[str]:
    found = []
    for index, rule in enumerate(rules):
        at = f"{where}: Retry[{index}]"
        found += [f"{at}: field {key} is not supported" for key in rule if key not in RETRY_FIELDS] + _errors(rule, at)
        if "States.ALL" in rule.get("ErrorEquals", []) and index != len(rules) - 1:
            found.append(f"{at}: a States.ALL retrier must come last")
        if rule.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
            found.append(f"{at}: JitterStrategy {rule['JitterStrategy']!r} is not supported (FULL or NONE)")
        found += _positive_int(rule, "IntervalSeconds", at) + _positive_int(rule, "MaxDelaySeconds", at)
        if not isinstance(rule.get("MaxAttempts", 0), int) or rule.get("MaxAttempts", 0) < 0:
            found.append(f"{at}: MaxAttempts must be a whole number >= 0")
        if not isinstance(rule.get("BackoffRate", 1.0), (int, float)) or rule.get("BackoffRate", 1.0) < 1:
            found.append(f"{at}: BackoffRate must be a number >= 1")
    return found


def _catch(rules: list, states: dict, where: str) -> list[str]:
    found = []
    for index, rule in enumerate(rules):
        at = f"{where}: Catch[{index}]"
        found += [f"{at}: field {key} is not supported" for key in rule if key not in CATCH_FIELDS] + _errors(rule, at)
        if rule.get("Next") not in states:
            found.append(f"{at}: Next {rule.get('Next')!r} is not a state")
        if rule.get("ResultPath") is not None:
            found += _paths({"ResultPath": rule["ResultPath"]}, at)
    return found


def _positive_int(holder: dict, key: str, where: str) -> list[str]:
    value = holder.get(key, 1)
    return (
        []
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
        else [f"{where}: {key} must be a whole number > 0"]
    )


def _task(state: dict, where: str) -> list[str]:
    resource = state.get("Resource")
    if resource != LAMBDA_INVOKE and resource not in SERVICES:
        return [f"{where}: Resource {resource!r} is not supported (supported: {', '.join(sorted({LAMBDA_INVOKE, *SERVICES}))})"]
    found = _positive_int(state, "TimeoutSeconds", where)
    if resource == LAMBDA_INVOKE:
        params = state.get("Parameters", {})
        found += [
            f"{where}: Parameters.{key} is not supported for lambda:invoke"
            for key in params
            if key not in ("FunctionName", "Payload", "Payload.$")
        ]
        if "FunctionName" not in params:
            found.append(f"{where}: lambda:invoke needs Parameters.FunctionName")
    return found


def _choice(state: dict, states: dict, where: str) -> list[str]:
    rules = state.get("Choices")
    if not isinstance(rules, list) or not rules:
        return [f"{where}: Choices must be a non-empty list"]
    found = []
    for index, rule in enumerate(rules):
        found += choice.problems(rule, f"{where}: Choices[{index}]", top=True)
        if "Next" in rule and rule["Next"] not in states:
            found.append(f"{where}: Choices[{index}].Next {rule['Next']!r} is not a state")
    if "Default" in state and state["Default"] not in states:
        found.append(f"{where}: Default {state['Default']!r} is not a state")
    return found


def _map(state: dict, where: str) -> list[str]:
    processor = state.get("ItemProcessor")
    if not isinstance(processor, dict):
        return [f"{where}: a Map needs ItemProcessor"]
    config = processor.get("ProcessorConfig", {})
    found = [f"{where}: ProcessorConfig.{key} is not supported" for key in config if key not in ("Mode", "ExecutionType")]
    mode = config.get("Mode", "INLINE")
    if mode not in ("INLINE", "DISTRIBUTED"):
        found.append(f"{where}: ProcessorConfig.Mode {mode!r} is not supported")
    if config.get("ExecutionType", "STANDARD") not in ("STANDARD", "EXPRESS"):
        found.append(f"{where}: ProcessorConfig.ExecutionType {config['ExecutionType']!r} is not supported")
    distributed_only = ("ItemReader", "ResultWriter", *(f"{k}{p}" for k in LIMITS[1:] for p in ("", "Path")))
    if mode != "DISTRIBUTED":
        found += [f"{where}: {key} needs ProcessorConfig.Mode DISTRIBUTED" for key in distributed_only if key in state]
    if "ItemReader" in state and "ItemsPath" in state:
        found.append(f"{where}: ItemsPath and ItemReader exclude each other")
    found += _reader(state.get("ItemReader"), where) + _writer(state.get("ResultWriter"), where)
    if not isinstance(state.get("MaxConcurrency", 0), int) or state.get("MaxConcurrency", 0) < 0:
        found.append(f"{where}: MaxConcurrency must be a whole number >= 0")
    if not 0 <= state.get("ToleratedFailurePercentage", 0) <= 100:
        found.append(f"{where}: ToleratedFailurePercentage must be between 0 and 100")
    return found + _machine(processor, f"{where}: ItemProcessor", top=False)


def _reader(reader: dict | None, where: str) -> list[str]:
    if reader is None:
        return []
    found = [
        f"{where}: ItemReader.{key} is not supported" for key in reader if key not in ("Resource", "Parameters", "ReaderConfig")
    ]
    if reader.get("Resource") not in READERS:
        found.append(
            f"{where}: ItemReader.Resource {reader.get('Resource')!r} is not supported (s3:getObject or s3:listObjectsV2)"
        )
    config = reader.get("ReaderConfig", {})
    found += [
        f"{where}: ItemReader.ReaderConfig.{key} is not supported"
        for key in config
        if key not in ("InputType", "CSVHeaderLocation", "CSVHeaders", "MaxItems")
    ]
    if reader.get("Resource") == "arn:aws:states:::s3:getObject" and config.get("InputType") not in ("JSON", "JSONL", "CSV"):
        found.append(
            f"{where}: ItemReader.ReaderConfig.InputType {config.get('InputType')!r} is not supported (JSON, JSONL or CSV)"
        )
    if config.get("CSVHeaderLocation", "FIRST_ROW") not in ("FIRST_ROW", "GIVEN"):
        found.append(f"{where}: ItemReader.ReaderConfig.CSVHeaderLocation {config['CSVHeaderLocation']!r} is not supported")
    return found + paths.template_problems(reader.get("Parameters", {}), f"{where}: ItemReader.Parameters")


def _writer(writer: dict | None, where: str) -> list[str]:
    if writer is None:
        return []
    found = [f"{where}: ResultWriter.{key} is not supported" for key in writer if key not in ("Resource", "Parameters")]
    if writer.get("Resource") != WRITER:
        found.append(f"{where}: ResultWriter.Resource {writer.get('Resource')!r} is not supported ({WRITER})")
    params = writer.get("Parameters", {})
    found += [
        f"{where}: ResultWriter.Parameters.{key} is not supported"
        for key in params
        if key.removesuffix(".$") not in ("Bucket", "Prefix")
    ]
    return found + paths.template_problems(params, f"{where}: ResultWriter.Parameters")
