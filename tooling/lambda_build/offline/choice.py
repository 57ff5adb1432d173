"""Choice rules: the comparisons the runner implements, checked and evaluated."""

from __future__ import annotations

import numbers
import operator

from . import paths

_NUMERIC = {
    "NumericEquals": operator.eq,
    "NumericLessThan": operator.lt,
    "NumericGreaterThan": operator.gt,
    "NumericLessThanEquals": operator.le,
    "NumericGreaterThanEquals": operator.ge,
}
COMPARISONS = {"IsPresent", "IsNull", "StringEquals", "BooleanEquals", *_NUMERIC}
COMBINATORS = {"And", "Or", "Not"}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def problems(rule: dict, where: str, *, top: bool) -> list[str]:
    """Why ``rule`` cannot be evaluated: unknown operators or fields, bad paths, missing Next."""
    allowed = {"Variable", "Comment", *COMPARISONS, *COMBINATORS} | ({"Next"} if top else set())
    found = [f"{where}: field {key} is not supported" for key in rule if key not in allowed]
    if top and "Next" not in rule:
        found.append(f"{where}: a choice rule needs Next")
    operators = [key for key in rule if key in COMPARISONS or key in COMBINATORS]
    if len(operators) != 1:
        return found + [f"{where}: a rule needs exactly one comparison or And/Or/Not (found {operators or 'none'})"]
    (op,) = operators
    if op in COMBINATORS:
        nested = [rule[op]] if op == "Not" else rule[op]
        if not isinstance(nested, list) or not nested:
            return found + [f"{where}: {op} needs a rule" + ("" if op == "Not" else " list")]
        for index, child in enumerate(nested):
            found += problems(child, f"{where}.{op}[{index}]", top=False)
        return found
    try:
        paths.parse(rule.get("Variable"))
    except ValueError as exc:
        found.append(f"{where}: Variable {exc}")
    return found


def _numeric(compare):
    return lambda value, expected: _is_number(value) and compare(value, expected)


# How each comparison judges the Variable's value against the rule's operand (IsPresent is
# judged on the path alone, in matches()).
_TESTS = {
    "IsNull": lambda value, expected: (value is None) == expected,
    "StringEquals": lambda value, expected: isinstance(value, str) and value == expected,
    "BooleanEquals": lambda value, expected: isinstance(value, bool) and value == expected,
    **{name: _numeric(compare) for name, compare in _NUMERIC.items()},
}


def matches(rule: dict, data, context: dict) -> bool:
    """Whether ``rule`` holds for ``data`` (a missing Variable is a PathError except for IsPresent)."""
    if "And" in rule:
        return all(matches(child, data, context) for child in rule["And"])
    if "Or" in rule:
        return any(matches(child, data, context) for child in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    if "IsPresent" in rule:
        return paths.exists(rule["Variable"], data) == rule["IsPresent"]
    name = next(key for key in rule if key in _TESTS)
    return _TESTS[name](paths.get(rule["Variable"], data, context), rule[name])
