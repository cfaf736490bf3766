"""The three places a setting can come from, each turned into a layer of snake_case values.

A layer is the values it provides (nested dicts keyed by field name), where each leaf came from (so an error can name
the YAML key, the environment variable or the override that holds the bad value) and the problems found while
reading (unknown keys, unparsable variables). Reading never stops at the first problem: the operator gets every
problem of the configuration in one run.

- YAML: a ``YamlConfigSettingsSource`` subclass (the stack-notes pattern) that reads the seed's camelCase keys and
  translates them, model by model, to field names. Only the exact camelCase spelling is accepted.
- Environment: ``ENGINE_`` + the field path in upper snake case, ``__`` between levels
  (``ENGINE_ERROR_HANDLING__RATE_LIMIT__HISTORY__REQUESTS=99``); lists are JSON (``ENGINE_ACCOUNTS=[1,2]``).
  The credentials have their own fixed names, ``TOPSTEPX_USERNAME`` and ``TOPSTEPX_API_KEY``.
- Overrides (CLI flags): a mapping, nested or with dotted keys, camelCase or snake_case; ``None`` means "not given".
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings, YamlConfigSettingsSource

from settings.keys import field_for_yaml_key, is_complex_leaf, section_model, unknown_key_hint, yaml_key

ENV_PREFIX = "ENGINE_"
ENV_NESTED_DELIMITER = "__"
USERNAME_ENV = "TOPSTEPX_USERNAME"
API_KEY_ENV = "TOPSTEPX_API_KEY"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """Where a value came from: the YAML file, an environment variable (``name``), an override, or the default."""

    kind: Literal["file", "env", "override", "default"]
    name: str = ""


DEFAULT_ORIGIN = Origin("default")


@dataclass
class Layer:
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Origin] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ConfigFileError(Exception):
    """The file itself cannot be used (missing, unreadable, not YAML, not a mapping). One line, no traceback."""


# --- translation of camelCase mappings -------------------------------------------------------------------------------


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def translate(
    data: Mapping[Any, Any],
    model: type[BaseModel],
    layer: Layer,
    origin: Origin,
    *,
    accept_field_names: bool = False,
    note: str = "",
    _loc: tuple[str, ...] = (),
    _path: str = "",
) -> dict[str, Any]:
    """Rename the keys of ``data`` from YAML spelling to field names, guided by ``model``.

    Unknown keys become problems (and are dropped, so the rest can still be validated); every leaf's origin is
    recorded in ``layer``. An empty section (``api:`` with everything below commented out) counts as an empty mapping.
    """
    result: dict[str, Any] = {}
    for key, value in data.items():
        match = field_for_yaml_key(model, key)
        if match is None and accept_field_names and isinstance(key, str) and key in model.model_fields:
            match = key, model.model_fields[key]
        if match is None:
            layer.problems.append(f"{_join(_path, key)}{note}: unknown key; {unknown_key_hint(model, key)}")
            continue
        name, info = match
        loc, path = (*_loc, name), _join(_path, yaml_key(name, info))
        sub = section_model(info)
        if sub is not None and value is None:
            value = {}
        if sub is not None and isinstance(value, Mapping):
            result[name] = translate(
                value, sub, layer, origin, accept_field_names=accept_field_names, note=note, _loc=loc, _path=path
            )
        else:
            result[name] = value
            layer.origins[loc] = origin
    return result


# --- YAML ------------------------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (plain YAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path) -> dict[Any, Any]:
    """The top-level mapping of a YAML file, or :class:`ConfigFileError` with one line saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, expected a YAML config file") from None
    except PermissionError:
        raise ConfigFileError(f"{path}: cannot read the config file (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: the config file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # Only the problem text, never str(exc): that would quote the offending line, which may hold a secret.
        raise ConfigFileError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: invalid YAML ({type(exc).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({type(data).__name__})"
        raise ConfigFileError(f"{path}: the top level must be a mapping of sections (api:, signalr:, ...), got {kind}")
    return data


class CamelCaseYamlSource(YamlConfigSettingsSource):
    """The YAML file as a pydantic-settings source, with the seed's camelCase keys translated to field names.

    ``layer`` holds the translated values with their origins and the unknown-key problems. A file that cannot be
    used raises :class:`ConfigFileError` from the constructor.
    """

    def __init__(self, settings_cls: type[BaseSettings], yaml_file: Path) -> None:
        self.layer = Layer()
        self._settings_cls = settings_cls
        path = yaml_file.expanduser()
        if not path.exists():
            raise ConfigFileError(f"{path}: config file not found")
        if path.is_dir():
            raise ConfigFileError(f"{path}: is a directory, expected a YAML config file")
        if not path.is_file():
            raise ConfigFileError(f"{path}: not a regular file, expected a YAML config file")
        super().__init__(settings_cls, yaml_file=path, yaml_file_encoding="utf-8")
        self.layer.values = self.yaml_data

    def _read_file(self, file_path: Path) -> dict[str, Any]:
        return translate(read_yaml_mapping(file_path), self._settings_cls, self.layer, Origin("file", str(file_path)))


# --- environment -----------------------------------------------------------------------------------------------------


def _env_spelling(loc: tuple[str, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(part.upper() for part in loc)


def _env_hint(model: type[BaseModel], loc: tuple[str, ...], part: str, after: list[str]) -> str:
    names = list(model.model_fields)
    for name in names:  # ENGINE_API_TIMEOUT: a single "_" where the level separator "__" belongs
        if part.startswith(f"{name}_") and section_model(model.model_fields[name]) is not None:
            rest = part[len(name) + 1 :].lstrip("_")
            suggestion = _env_spelling((*loc, name, rest, *after))
            return f"did you mean {suggestion}? (levels are separated by {ENV_NESTED_DELIMITER})"
    close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {_env_spelling((*loc, close[0]))}?"
    return f"expected one of: {', '.join(_env_spelling((*loc, n)) for n in names)}"


def env_layer(env: Mapping[str, str], model: type[BaseModel]) -> Layer:
    """``ENGINE_*`` variables and the two credential variables as a layer.

    A variable is taken as a setting when its name after ``ENGINE_`` starts with a top-level key (``ENGINE_API...``,
    ``ENGINE_SIGNALR...``, ``ENGINE_ACCOUNTS``); if it then names no setting, that is a problem (a typo must not be
    silently ignored). Other ``ENGINE_*`` names (``ENGINE_TEST_PG_URL``) belong to someone else and are left alone.
    """
    layer = Layer()
    for name in sorted(env):
        if _is_setting_variable(name, model):
            _read_env_var(name, env[name], model, layer)
    for var, key in ((USERNAME_ENV, "username"), (API_KEY_ENV, "api_key")):
        value = env.get(var)
        if value:  # an empty variable is "not set", so it does not blank out a value from the file
            layer.values = deep_merge(layer.values, {"credentials": {key: value}})
            layer.origins[("credentials", key)] = Origin("env", var)
    return layer


def _is_setting_variable(name: str, model: type[BaseModel]) -> bool:
    if not name.startswith(ENV_PREFIX):
        return False
    rest = name[len(ENV_PREFIX) :].lower()
    return any(rest == field or rest.startswith(f"{field}_") for field in model.model_fields)


def _read_env_var(name: str, raw: str, model: type[BaseModel], layer: Layer) -> None:
    parts = name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
    current: type[BaseModel] = model
    loc: tuple[str, ...] = ()
    for index, part in enumerate(parts):
        info = current.model_fields.get(part)
        if info is None:
            layer.problems.append(f"{name}: no such setting; {_env_hint(current, loc, part, parts[index + 1 :])}")
            return
        loc = (*loc, part)
        sub = section_model(info)
        last = index == len(parts) - 1
        if sub is None and not last:
            layer.problems.append(f"{name}: {_env_spelling(loc)} is a single value and has no settings below it")
            return
        if sub is not None and last:
            example = _env_spelling((*loc, next(iter(sub.model_fields))))
            layer.problems.append(f"{name}: names a whole section; set its values one by one, e.g. {example}")
            return
        if sub is not None:
            current = sub
            continue
        value: Any = raw
        if is_complex_leaf(info):
            try:
                value = json.loads(raw)
            except ValueError:
                layer.problems.append(f"{name}: got {raw!r}; expected JSON, e.g. [1000, 5000] (or null)")
                return
        nested: dict[str, Any] = {loc[-1]: value}
        for key in reversed(loc[:-1]):
            nested = {key: nested}
        layer.values = deep_merge(layer.values, nested)
        layer.origins[loc] = Origin("env", name)


# --- overrides -------------------------------------------------------------------------------------------------------


def _expand_dotted(data: Mapping[str, Any]) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
        for part in reversed(str(key).split(".")[1:]):
            value = {part: value}
        expanded = deep_merge(expanded, {str(key).split(".")[0]: value})
    return expanded


def overrides_layer(overrides: Mapping[str, Any], model: type[BaseModel]) -> Layer:
    """CLI-flag values: ``{"api.timeout": 5000}`` or ``{"api": {"timeout": 5000}}``; camelCase or snake_case keys."""
    layer = Layer()
    layer.values = translate(
        _expand_dotted(overrides),
        model,
        layer,
        Origin("override"),
        accept_field_names=True,
        note=" (command-line override)",
    )
    return layer


# --- merging ---------------------------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``; mappings merge key by key, everything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def merge_layers(layers: list[Layer]) -> Layer:
    """Later layers win. A later leaf also hides the origins recorded below it by earlier layers."""
    result = Layer()
    for layer in layers:
        result.values = deep_merge(result.values, layer.values)
        for loc, origin in layer.origins.items():
            for old in [old for old in result.origins if old[: len(loc)] == loc]:
                del result.origins[old]
            result.origins[loc] = origin
        result.problems.extend(layer.problems)
    return result


def origin_of(origins: Mapping[Loc, Origin], loc: Loc) -> Origin:
    """The origin of the value at ``loc``: that of the longest recorded prefix, else the default."""
    for length in range(len(loc), 0, -1):
        found = origins.get(tuple(loc[:length]))
        if found is not None:
            return found
    return DEFAULT_ORIGIN
