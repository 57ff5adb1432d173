"""The intrinsic functions the runner implements, for ``"key.$": "States.Format('DS#{}', $.x)"``:
States.Format, States.StringToJson, States.JsonToString, States.Array and States.JsonMerge (shallow,
its third argument false, as AWS requires). Arguments are quoted
strings (``\\'`` escapes a quote), numbers, true/false/null, reference paths or nested calls."""

from __future__ import annotations

import json
import re

_CALL = re.compile(r"^(States\.[A-Za-z]+)\((.*)\)$", re.DOTALL)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
FUNCTIONS = ("States.Format", "States.StringToJson", "States.JsonToString", "States.Array", "States.JsonMerge")


class IntrinsicError(ValueError):
    """An intrinsic call outside the supported subset, or malformed."""


def _split(arguments: str) -> list[str]:
    """Top-level comma-separated arguments (commas inside quotes or nested calls do not split)."""
    parts, depth, quoted, current, escaped = [], 0, False, "", False
    for char in arguments:
        if escaped:
            current, escaped = current + char, False
            continue
        if char == "\\" and quoted:
            current, escaped = current + char, True
            continue
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ",":
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if quoted or depth:
        raise IntrinsicError(f"unbalanced quotes or parentheses in {arguments!r}")
    return [*parts, current.strip()] if current.strip() or parts else []


def parse(text: str) -> tuple[str, list]:
    """``(function name, [argument])``; each argument ``("literal", v)``, ``("path", p)`` or ``("call", parsed)``."""
    match = _CALL.match(text.strip())
    if match is None:
        raise IntrinsicError(f"{text!r} is not an intrinsic function call")
    name, arguments = match.groups()
    if name not in FUNCTIONS:
        raise IntrinsicError(f"{name} is not supported (supported: {', '.join(FUNCTIONS)})")
    return name, [_argument(part) for part in _split(arguments)]


def _argument(part: str):
    if part.startswith("'") and part.endswith("'") and len(part) >= 2:
        return ("literal", re.sub(r"\\(.)", r"\1", part[1:-1]))
    if part.startswith("$"):
        return ("path", part)
    if part.startswith("States."):
        return ("call", parse(part))
    if _NUMBER.match(part):
        return ("literal", json.loads(part))
    if part in ("true", "false", "null"):
        return ("literal", json.loads(part))
    raise IntrinsicError(f"argument {part!r} is not a string, number, path or call")


def evaluate(parsed: tuple[str, list], lookup):
    """The call's value; ``lookup(path)`` gives a reference path's value."""
    name, arguments = parsed
    values = [lookup(v) if kind == "path" else evaluate(v, lookup) if kind == "call" else v for kind, v in arguments]
    if name == "States.Format":
        template, *fills = values
        pieces = template.split("{}")
        if len(pieces) - 1 != len(fills):
            raise IntrinsicError(f"States.Format: {len(pieces) - 1} placeholders for {len(fills)} values")
        text = pieces[0]
        for fill, piece in zip(fills, pieces[1:], strict=True):
            text += (fill if isinstance(fill, str) else json.dumps(fill)) + piece
        return text
    if name == "States.StringToJson":
        return json.loads(values[0])
    if name == "States.JsonToString":
        return json.dumps(values[0], separators=(",", ":"))
    if name == "States.JsonMerge":
        left, right, deep = values
        if deep is not False or not isinstance(left, dict) or not isinstance(right, dict):
            raise IntrinsicError("States.JsonMerge takes two JSON objects and false (a shallow merge)")
        return {**left, **right}
    return values  # States.Array
