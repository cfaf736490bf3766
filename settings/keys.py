"""Key names, derived from the models: camelCase YAML key <-> snake_case field, dotted paths, secret fields.

Everything that needs to know "what keys exist" asks the models through this module, so the YAML reader, the
environment reader, the error messages and ``config check`` can never disagree with the models or with each other.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo


def yaml_key(name: str, field: FieldInfo) -> str:
    """The key as written in YAML (the field's camelCase serialization alias)."""
    return field.serialization_alias or name


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of an annotation, looking through ``X | None`` and ``Annotated``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members: list[Any] = []
        for arg in get_args(annotation):
            members.extend(_unwrap(arg))
        return members
    return [annotation]


def section_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a nested section, or None for a leaf value (number, string, list, ...)."""
    for member in _unwrap(field.annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def is_secret(field: FieldInfo) -> bool:
    return any(isinstance(m, type) and issubclass(m, SecretStr) for m in _unwrap(field.annotation))


def may_hold_secret(field: FieldInfo) -> bool:
    """True for a secret field and for a section that has one somewhere below it (its value must not be shown)."""
    sub = section_model(field)
    if sub is None:
        return is_secret(field)
    return any(may_hold_secret(f) for f in sub.model_fields.values())


def is_complex_leaf(field: FieldInfo) -> bool:
    """A leaf that an environment variable must spell as JSON (a list, ``null``-able list, ...)."""
    return any(get_origin(m) in (list, tuple, dict) or m in (list, tuple, dict) for m in _unwrap(field.annotation))


def field_for_yaml_key(model: type[BaseModel], key: object) -> tuple[str, FieldInfo] | None:
    for name, field in model.model_fields.items():
        if yaml_key(name, field) == key:
            return name, field
    return None


def unknown_key_hint(model: type[BaseModel], key: object) -> str:
    """What to say about a key the model does not have: the valid keys, and the closest one if there is one."""
    valid = [yaml_key(name, field) for name, field in model.model_fields.items()]
    hint = f"expected one of: {', '.join(valid)}"
    if isinstance(key, str):
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        lowered = {v.lower(): v for v in valid}
        squashed = key.replace("_", "").lower()
        if squashed in lowered:
            close = [lowered[squashed]]
        if close:
            hint = f"did you mean '{close[0]}'? ({hint})"
    return hint


def describe_path(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, bool]:
    """Turn a validation location of field names into the dotted camelCase path as written in YAML.

    Returns ``(path, secret)`` where ``secret`` says the value at that location must never be shown. List indexes
    are written ``[i]``; parts that are not fields (already YAML spellings, e.g. an unknown key) are kept as they are.
    """
    parts: list[str] = []
    secret = False
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            continue
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            parts.append(("." if parts else "") + part)
            current = None
            continue
        parts.append(("." if parts else "") + yaml_key(part, field))
        secret = may_hold_secret(field)
        current = section_model(field)
    return "".join(parts), secret
