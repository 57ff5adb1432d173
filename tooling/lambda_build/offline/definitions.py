"""A state machine's definition as the template deploys it: its DefinitionUri with the
DefinitionSubstitutions (``${Name}``) filled from the stack's physical resources."""

from __future__ import annotations

import json

from ..config import REPO_ROOT
from .emulator import arn


def attribute(logical_id: str, attr: str | None, resource_type: str, physical: str) -> str:
    """What ``!Ref`` (attr None) or ``!GetAtt logical_id.attr`` gives for a deployed resource."""
    if attr is None or attr in ("QueueUrl", "Name", "QueueName"):
        return physical
    if attr == "Arn" and resource_type.endswith("Function"):
        return arn("lambda", f"function:{physical}")
    if attr == "Arn" and resource_type == "AWS::DynamoDB::Table":
        return arn("dynamodb", f"table/{physical}")
    if attr == "Arn" and resource_type == "AWS::S3::Bucket":
        return f"arn:aws:s3:::{physical}"
    raise ValueError(f"{logical_id}.{attr}: not resolvable offline")


def substitutions(template: dict, machine: str, physical: dict[str, str], parameters: dict | None = None) -> dict[str, str]:
    """The state machine ``machine``'s DefinitionSubstitutions, resolved against ``physical``
    (logical id -> physical id: the stack's resources, or the test's own names) and the template's
    parameters (``parameters`` over their defaults)."""
    resources = template["Resources"]
    resolved = {}
    for name, value in resources[machine]["Properties"].get("DefinitionSubstitutions", {}).items():
        if isinstance(value, (str, int, float)):
            resolved[name] = str(value)
        elif "Ref" in value and value["Ref"] in template.get("Parameters", {}):
            resolved[name] = str((parameters or {}).get(value["Ref"], template["Parameters"][value["Ref"]].get("Default", "")))
        else:
            logical, attr = (value["Ref"], None) if "Ref" in value else value["Fn::GetAtt"]
            resolved[name] = attribute(logical, attr, resources[logical]["Type"], physical[logical])
    return resolved


def load(template: dict, machine: str, physical: dict[str, str], parameters: dict | None = None) -> dict:
    """The definition of ``machine`` (a logical id) with its substitutions filled in."""
    text = (REPO_ROOT / template["Resources"][machine]["Properties"]["DefinitionUri"]).read_text()
    for name, value in substitutions(template, machine, physical, parameters).items():
        text = text.replace("${" + name + "}", json.dumps(value)[1:-1])
    return json.loads(text)


def log_group(template: dict, machine: str, physical: dict[str, str]) -> str | None:
    """The state machine's execution log group (Logging.Destinations), when the template sets one."""
    for destination in template["Resources"][machine]["Properties"].get("Logging", {}).get("Destinations", []):
        arn = destination.get("CloudWatchLogsLogGroup", {}).get("LogGroupArn", {})
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            return physical.get(arn["Fn::GetAtt"][0])
    return None
