"""The JSONPath subset of the Amazon States Language: reference paths and payload templates.

A reference path is ``$`` (the state's data) or ``$$`` (the context object) followed by
``.field`` and ``[index]`` steps; nothing else (no wildcards or filters), so an unsupported path
is refused when the definition is validated, not half-evaluated at run time. A template value may
also be one of the intrinsic functions in ``intrinsics``.
"""

from __future__ import annotations

import copy
import re

from . import intrinsics

_STEP = re.compile(r"\.([A-Za-z0-9_@\-]+)|\[(\d+)\]|\['([^']+)'\]")


class PathError(Exception):
    """A path that does not match the data (Step Functions: States.Runtime)."""


def parse(path: str) -> tuple[bool, list[str | int]]:
    """``(is_context, steps)`` for a reference path; ValueError when it is outside the subset."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"{path!r} is not a reference path (it must start with $ or $$)")
    context = path.startswith("$$")
    rest, steps = path[2 if context else 1 :], []
    while rest:
        match = _STEP.match(rest)
        if match is None:
            raise ValueError(f"{path!r}: only .field and [index] steps are supported")
        field, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (field if field is not None else quoted))
        rest = rest[match.end() :]
    return context, steps


def get(path: str, data, context: dict | None = None):
    """The value at ``path``; PathError when a step is missing."""
    is_context, steps = parse(path)
    value = context if is_context else data
    for step in steps:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            raise PathError(f"the path {path!r} matches nothing in the state's input") from None
    return value


def exists(path: str, data) -> bool:
    try:
        get(path, data)
        return True
    except PathError:
        return False


def put(path: str | None, data, value):
    """ResultPath: ``data`` with ``value`` placed at ``path`` (None discards the value, ``$`` replaces)."""
    if path is None:
        return data
    _, steps = parse(path)
    if not steps:
        return value
    result = copy.deepcopy(data)
    target = result
    for step in steps[:-1]:
        if not isinstance(target, dict):
            raise PathError(f"ResultPath {path!r} cannot be applied to the state's input")
        target = target.setdefault(step, {})
    if not isinstance(target, dict):
        raise PathError(f"ResultPath {path!r} cannot be applied to the state's input")
    target[steps[-1]] = value
    return result


def select(path: str | None, data, context: dict | None = None):
    """InputPath and OutputPath: None gives ``{}``."""
    return {} if path is None else get(path, data, context)


def resolve(template, data, context: dict):
    """Parameters, ResultSelector, ItemSelector: keys ending in ``.$`` take the value at their path."""
    if isinstance(template, dict):
        resolved = {}
        for key, value in template.items():
            if key.endswith(".$") and value.startswith("States."):
                resolved[key[:-2]] = intrinsics.evaluate(intrinsics.parse(value), lambda path: get(path, data, context))
            elif key.endswith(".$"):
                resolved[key[:-2]] = get(value, data, context)
            else:
                resolved[key] = resolve(value, data, context)
        return resolved
    if isinstance(template, list):
        return [resolve(item, data, context) for item in template]
    return template


def template_problems(template, where: str) -> list[str]:
    """Why a payload template cannot be resolved by ``resolve`` (intrinsic functions, bad paths)."""
    problems = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                try:
                    _check_value(value)
                except ValueError as exc:
                    problems.append(f"{where}.{key}: {exc}")
            else:
                problems += template_problems(value, f"{where}.{key}")
    elif isinstance(template, list):
        for index, item in enumerate(template):
            problems += template_problems(item, f"{where}[{index}]")
    return problems


def _check_value(value) -> None:
    """A ``.$`` value: a reference path, or a supported intrinsic call whose paths are supported."""
    if isinstance(value, str) and value.startswith("States."):
        _check_call(intrinsics.parse(value))
    else:
        parse(value)


def _check_call(parsed) -> None:
    for kind, argument in parsed[1]:
        if kind == "path":
            parse(argument)
        elif kind == "call":
            _check_call(argument)
