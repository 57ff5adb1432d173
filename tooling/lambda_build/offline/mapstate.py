"""The Map state: items (ItemsPath or an S3 ItemReader), ItemSelector, a thread pool bounded by
MaxConcurrency, failure tolerance, and the ResultWriter's files in S3."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from . import paths
from .errors import ExecutionFailed, TaskFailed
from .validation import LIMITS, WRITER


def run_map(execution, state: dict, effective, context: dict):
    """The Map's result: every item's output in order, or the ResultWriter's summary."""
    items = read_items(execution, state, effective, context)
    limits = _limits(state, effective, context)
    if "ItemSelector" in state:
        items = [
            paths.resolve(state["ItemSelector"], effective, {**context, "Map": {"Item": {"Index": i, "Value": item}}})
            for i, item in enumerate(items)
        ]
    outcomes = _run_items(execution, state["ItemProcessor"], items, workers(limits, len(items)))
    failed = [outcome for outcome in outcomes if outcome["Status"] == "FAILED"]
    distributed = state["ItemProcessor"].get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    result = (
        write_results(execution, state, effective, context, outcomes)
        if "ResultWriter" in state
        else [outcome.get("Output", {"Error": outcome.get("Error"), "Cause": outcome.get("Cause")}) for outcome in outcomes]
    )
    if failed and not distributed:
        raise TaskFailed(failed[0]["Error"], failed[0]["Cause"])
    if failed and _over_tolerance(limits, len(failed), len(outcomes)):
        raise TaskFailed(
            "States.ExceedToleratedFailureThreshold",
            f"{len(failed)} of {len(outcomes)} items failed (first: {failed[0]['Error']}: {failed[0]['Cause']})",
        )
    return result


def _limits(state: dict, effective, context: dict) -> dict:
    """MaxConcurrency and the tolerated failures, given or read from the input (``...Path``)."""
    limits = {key: state[key] for key in LIMITS if key in state}
    for key in LIMITS:
        if f"{key}Path" in state:
            value = paths.get(state[f"{key}Path"], effective, context)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise TaskFailed("States.Runtime", f"{key}Path {state[f'{key}Path']!r} is not a number >= 0: {value!r}")
            limits[key] = value
    return limits


def _over_tolerance(state: dict, failed: int, total: int) -> bool:
    over = []
    if "ToleratedFailureCount" in state:
        over.append(failed > state["ToleratedFailureCount"])
    if "ToleratedFailurePercentage" in state:
        over.append(failed * 100 > state["ToleratedFailurePercentage"] * total)
    return any(over) if over else failed > 0


def workers(state: dict, items: int) -> int:
    """Threads for the items: MaxConcurrency, 0 (or absent) meaning as many as the CPUs."""
    limit = int(state.get("MaxConcurrency", 0)) or os.cpu_count() or 1
    return max(1, min(limit, items))


def _run_items(execution, processor: dict, items: list, threads: int) -> list[dict]:
    def one(item) -> dict:
        try:
            output = execution.fork().run_machine(processor, item)
            return {"Status": "SUCCEEDED", "Input": item, "Output": output}
        except ExecutionFailed as exc:
            return {"Status": "FAILED", "Input": item, "Error": exc.error, "Cause": exc.cause}

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="map-item") as pool:
        return list(pool.map(one, items))


def read_items(execution, state: dict, effective, context: dict) -> list:
    """The items: at ItemsPath in the input, or read by the ItemReader from S3."""
    reader = state.get("ItemReader")
    if reader is None:
        items = paths.get(state.get("ItemsPath", "$"), effective, context)
        if not isinstance(items, list):
            raise TaskFailed("States.Runtime", f"ItemsPath {state.get('ItemsPath', '$')!r} is not a list")
        return items
    params = paths.resolve(reader.get("Parameters", {}), effective, context)
    config = reader.get("ReaderConfig", {})
    found = execution.services[reader["Resource"]](params)
    if reader["Resource"].endswith(":s3:getObject"):
        found = parse_items(found, config)
    return list(found)[: config["MaxItems"]] if config.get("MaxItems") else list(found)


def parse_items(body: bytes | str, config: dict) -> list:
    """An S3 object's items: a JSON array, JSON lines, or CSV rows as objects keyed by the header."""
    text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
    kind = config["InputType"]
    if kind == "JSON":
        items = json.loads(text)
        if not isinstance(items, list):
            raise TaskFailed("States.ItemReaderFailed", "the JSON object is not an array")
        return items
    if kind == "JSONL":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = list(csv.reader(io.StringIO(text)))
    header = config.get("CSVHeaders") if config.get("CSVHeaderLocation") == "GIVEN" else (rows.pop(0) if rows else [])
    return [dict(zip(header, row, strict=False)) for row in rows]  # a short row lacks the last fields, as in AWS


def write_results(execution, state: dict, effective, context: dict, outcomes: list[dict]) -> dict:
    """Write SUCCEEDED_0.json / FAILED_0.json and manifest.json under ``<Prefix>/<map run id>/``."""
    params = paths.resolve(state["ResultWriter"].get("Parameters", {}), effective, context)
    run_id = str(uuid.uuid4())
    execution_arn = context["Execution"]["Id"]
    map_run_arn = execution_arn.replace(":execution:", ":mapRun:") + f"/{run_id}"
    folder = f"{params.get('Prefix', '').rstrip('/')}/{run_id}".lstrip("/")
    put = execution.services[WRITER]
    files: dict[str, list] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status in ("SUCCEEDED", "FAILED"):
        entries = [
            _entry(outcome, f"{map_run_arn}:{index}") for index, outcome in enumerate(outcomes) if outcome["Status"] == status
        ]
        if entries:
            body = json.dumps(entries, default=str)
            put({"Bucket": params["Bucket"], "Key": f"{folder}/{status}_0.json", "Body": body})
            files[status].append({"Key": f"{folder}/{status}_0.json", "Size": len(body.encode())})
    manifest = {"DestinationBucket": params["Bucket"], "MapRunArn": map_run_arn, "ResultFiles": files}
    put({"Bucket": params["Bucket"], "Key": f"{folder}/manifest.json", "Body": json.dumps(manifest)})
    return {"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": params["Bucket"], "Key": f"{folder}/manifest.json"}}


def _entry(outcome: dict, arn: str) -> dict:
    entry = {"ExecutionArn": arn, "Input": json.dumps(outcome["Input"], default=str), "Status": outcome["Status"]}
    if outcome["Status"] == "SUCCEEDED":
        entry["Output"] = json.dumps(outcome["Output"], default=str)
    else:
        entry.update(Error=outcome["Error"], Cause=outcome["Cause"])
    return entry
