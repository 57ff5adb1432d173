"""A small, strict Amazon States Language runner for the offline main job and the tests.

``run(definition, input, invoke=..., services=...)`` executes a state machine the way Step
Functions does for the subset it implements (Task, Choice, Pass, Succeed, Fail, Map inline and
DISTRIBUTED; InputPath, Parameters, ResultSelector, ResultPath, OutputPath; Retry with backoff,
MaxDelaySeconds and jitter; Catch; TimeoutSeconds). Everything else is refused before anything
runs (``UnsupportedDefinition`` naming the state and the field), never silently ignored.

* ``invoke(function_name, payload) -> result`` runs a Lambda function (``lambda:invoke``); it
  raises ``TaskFailed(errorType, cause)`` for a function error.
* ``services`` maps each other integration resource the definition uses
  (``arn:aws:states:::sqs:sendMessage``, ``...:dynamodb:deleteItem``, ...) to a callable taking the
  resolved Parameters and returning the API's response; it raises ``TaskFailed`` (e.g.
  ``DynamoDB.ConditionalCheckFailedException``) for a service error. Map's ItemReader calls
  ``...:s3:getObject`` (returns the body) or ``...:s3:listObjectsV2`` (returns every object
  entry), its ResultWriter ``...:s3:putObject`` (Bucket, Key, Body).
* Map items run on a thread pool (MaxConcurrency, 0 = CPU count), so ``invoke``, ``services`` and
  ``on_state`` must be thread-safe.
"""

from __future__ import annotations

import random as _random
import threading
import time
import uuid
from datetime import UTC, datetime

from . import choice, mapstate, paths
from .emulator import arn
from .errors import ExecutionFailed, TaskFailed, UnsupportedDefinition
from .validation import LAMBDA_INVOKE, resources, validate

__all__ = ["ExecutionFailed", "TaskFailed", "UnsupportedDefinition", "run", "validate"]
UNCATCHABLE = {"States.Runtime", "States.DataLimitExceeded"}  # wildcards never match these


def run(
    definition: dict,
    input,
    *,
    invoke,
    services: dict,
    execution_name: str | None = None,
    sleep=time.sleep,
    on_state=None,
    random=_random.random,
):
    """Run ``definition`` on ``input``; its output, or ExecutionFailed(error, cause, state).

    ``sleep(seconds)`` waits between retries and ``random()`` draws FULL jitter (both injectable
    for tests); ``on_state(event)`` sees each StateEntered, Retry and Caught event as a dict.
    """
    validate(definition)
    missing = sorted(resources(definition) - {LAMBDA_INVOKE} - set(services))
    if missing:
        raise UnsupportedDefinition([f"resource {name} is used but no service callable was given" for name in missing])
    name = execution_name or str(uuid.uuid4())
    execution = Execution(invoke, services, sleep, on_state or (lambda event: None), random)
    execution.context = {
        "Execution": {
            "Id": arn("states", f"execution:local:{name}"),
            "Name": name,
            "Input": input,
            "StartTime": _now(),
        },
        "StateMachine": {"Id": arn("states", "stateMachine:local"), "Name": "local"},
    }
    return execution.run_machine(definition, input, timeout=definition.get("TimeoutSeconds"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_matches(names: list[str], error: str) -> bool:
    """Whether ErrorEquals ``names`` matches ``error`` (States.TaskFailed: anything but a timeout)."""
    if error in names:
        return True
    if error in UNCATCHABLE:
        return False
    return "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


def retry_delay(rule: dict, attempt: int, random=_random.random) -> float:
    """Seconds before retry number ``attempt + 1`` under ``rule`` (backoff, cap, FULL jitter)."""
    delay = rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** attempt
    if "MaxDelaySeconds" in rule:
        delay = min(delay, rule["MaxDelaySeconds"])
    return delay * random() if rule.get("JitterStrategy") == "FULL" else delay


def call_with_timeout(call, seconds: int | None):
    """``call()``, or TaskFailed States.Timeout when it runs past ``seconds`` (it is abandoned)."""
    if seconds is None:
        return call()
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TaskFailed("States.Timeout", f"the task did not finish within TimeoutSeconds {seconds}")
    if "error" in box:
        raise box["error"]
    return box["value"]


class Execution:
    """One execution's (or Map item's) walk through a state machine."""

    def __init__(self, invoke, services, sleep, on_state, random) -> None:
        self.invoke, self.services, self.sleep, self.on_state, self.random = invoke, services, sleep, on_state, random
        self.context: dict = {}
        self.caught: dict | None = None

    def fork(self) -> Execution:
        child = Execution(self.invoke, self.services, self.sleep, self.on_state, self.random)
        child.context = self.context
        return child

    def run_machine(self, machine: dict, data, *, timeout: int | None = None):
        started, name = time.monotonic(), machine["StartAt"]
        while True:
            if timeout is not None and time.monotonic() - started > timeout:
                raise ExecutionFailed("States.Timeout", f"the execution ran past TimeoutSeconds {timeout}", name, self.caught)
            state = machine["States"][name]
            self.on_state({"event": "StateEntered", "state": name})
            context = {**self.context, "State": {"Name": name, "EnteredTime": _now(), "RetryCount": 0}}
            try:
                name, data, done = self._step(name, state, data, context)
            except TaskFailed as exc:
                raise ExecutionFailed(exc.error, exc.cause, name, self.caught) from exc
            if done:
                return data

    def _step(self, name: str, state: dict, data, context: dict) -> tuple[str | None, object, bool]:
        """One state: ``(next state, data, finished)``."""
        kind = state["Type"]
        try:
            if kind == "Fail":
                raise TaskFailed(state.get("Error", "States.Fail"), state.get("Cause", ""))
            if kind in ("Succeed", "Choice"):
                passed = paths.select(state.get("InputPath", "$"), data, context)
                target = self._choose(state, passed, context) if kind == "Choice" else None
                return target, paths.select(state.get("OutputPath", "$"), passed, context), kind == "Succeed"
            if kind == "Pass":
                return state.get("Next"), self._pass(state, data, context), bool(state.get("End"))
            target, data = self._with_policy(name, state, data, context)
        except paths.PathError as exc:
            raise TaskFailed("States.Runtime", str(exc)) from exc
        return target, data, target is None

    def _choose(self, state: dict, passed, context: dict) -> str:
        for rule in state["Choices"]:
            if choice.matches(rule, passed, context):
                return rule["Next"]
        if "Default" in state:
            return state["Default"]
        raise TaskFailed("States.NoChoiceMatched", "no choice rule matched and there is no Default")

    def _pass(self, state: dict, data, context: dict):
        effective = paths.select(state.get("InputPath", "$"), data, context)
        if "Result" in state:
            result = state["Result"]
        elif "Parameters" in state:
            result = paths.resolve(state["Parameters"], effective, context)
        else:
            result = effective
        return paths.select(state.get("OutputPath", "$"), paths.put(state.get("ResultPath", "$"), data, result), context)

    def _with_policy(self, name: str, state: dict, data, context: dict) -> tuple[str | None, object]:
        """Task or Map with Retry and Catch: ``(next state or None at the end, data)``."""
        rules, attempts = state.get("Retry", []), [0] * len(state.get("Retry", []))
        while True:
            try:
                return (None if state.get("End") else state["Next"]), self._process(state, data, context)
            except TaskFailed as exc:
                index = next((i for i, rule in enumerate(rules) if error_matches(rule["ErrorEquals"], exc.error)), None)
                if index is not None and attempts[index] < rules[index].get("MaxAttempts", 3):
                    delay = retry_delay(rules[index], attempts[index], self.random)
                    attempts[index] += 1
                    context["State"]["RetryCount"] += 1
                    self.on_state(
                        {"event": "Retry", "state": name, "error": exc.error, "attempt": attempts[index], "delay": delay}
                    )
                    self.sleep(delay)
                    continue
                catcher = next((c for c in state.get("Catch", []) if error_matches(c["ErrorEquals"], exc.error)), None)
                if catcher is None:
                    raise
                caught = {"state": name, "error": exc.error, "cause": exc.cause}
                self.caught = self.caught or caught  # the first: later catches are on the failure's own path
                self.on_state({"event": "Caught", **caught, "next": catcher["Next"]})
                return catcher["Next"], paths.put(catcher.get("ResultPath", "$"), data, {"Error": exc.error, "Cause": exc.cause})

    def _process(self, state: dict, data, context: dict):
        """InputPath, Parameters, the work, ResultSelector, ResultPath, OutputPath."""
        effective = paths.select(state.get("InputPath", "$"), data, context)
        if state["Type"] == "Map":
            result = mapstate.run_map(self, state, effective, context)
        else:
            params = paths.resolve(state["Parameters"], effective, context) if "Parameters" in state else effective
            result = call_with_timeout(lambda: self._call(state["Resource"], params), state.get("TimeoutSeconds"))
        if "ResultSelector" in state:
            result = paths.resolve(state["ResultSelector"], result, context)
        return paths.select(state.get("OutputPath", "$"), paths.put(state.get("ResultPath", "$"), data, result), context)

    def _call(self, resource: str, params):
        if resource == LAMBDA_INVOKE:
            payload = self.invoke(params["FunctionName"], params.get("Payload", {}))
            return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
        return self.services[resource](params)
