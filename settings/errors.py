"""Configuration errors as the operator should read them: one line per problem, no traceback, no secret.

Each line names the key as written in YAML (``signalr.reconnection.delays``), or the environment variable that holds
the value, then the bad value and what is expected:

    signalr.reconnection.delays: got [2000, 1000]; expected delays that never decrease (1000 follows 2000)
    ENGINE_API__TIMEOUT (api.timeout): got "-5"; expected a number greater than 0

pydantic reports locations as snake_case field names; :func:`settings.keys.describe_path` maps them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from settings.keys import describe_path
from settings.sources import Loc, Origin, origin_of

REDACTED = "'**********'"
_MAX_VALUE_CHARS = 80


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def render_value(value: Any) -> str:
    """A short, YAML-reader-friendly rendering of a bad value (``true``, ``null``, ``"abc"``, ``[1, 2]``)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


_EXPECTATIONS: dict[str, str] = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a text value",
    "list_type": "expected a list",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "path_type": "expected a file path",
    "extra_forbidden": "unknown key",
    "missing": "a value is required",
    "finite_number": "expected a finite number",
}


def expectation(error: ErrorDetails) -> str:
    """The "expected ..." half of an error line, from pydantic's error type and context."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "greater_than":
        return f"expected a number greater than {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"expected a number of at least {ctx['ge']}"
    if kind == "less_than":
        return f"expected a number less than {ctx['lt']}"
    if kind == "less_than_equal":
        return f"expected a number of at most {ctx['le']}"
    if kind == "literal_error":
        return f"expected one of {ctx['expected']}"
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        return message.removeprefix("Value error, ")
    if kind in _EXPECTATIONS:
        return _EXPECTATIONS[kind]
    message = error["msg"]
    return "expected: " + (message[:1].lower() + message[1:])


_SUFFIX = {"default": " (the default)", "override": " (command-line override)"}


def describe_error(error: ErrorDetails, model: type[BaseModel], origins: Mapping[Loc, Origin]) -> str:
    """One line for one pydantic error: where (YAML path or variable), the bad value (redacted if secret), expected."""
    loc: Loc = tuple(error["loc"])
    path, secret = describe_path(model, loc)
    origin = origin_of(origins, loc)
    where = f"{origin.name} ({path})" if origin.kind == "env" else path
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    value = REDACTED if secret else render_value(error["input"])
    return f"{where}: got {value}{_SUFFIX.get(origin.kind, '')}; {expectation(error)}"


def describe_validation_error(exc: ValidationError, model: type[BaseModel], origins: Mapping[Loc, Origin]) -> list[str]:
    return [describe_error(error, model, origins) for error in exc.errors(include_url=False)]
