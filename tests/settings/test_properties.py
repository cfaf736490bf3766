"""Property-based checks: every positive-only setting refuses a non-positive value with one line naming its path,
and any valid configuration survives the trip through ``config check`` output and back."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from settings import ConfigError, EngineSettings, effective_config, effective_yaml, load_settings


def _leaves(model: type[BaseModel], loc: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, (*loc, name))
        else:
            yield (*loc, name), info


POSITIVE_ONLY = sorted(
    loc
    for loc, info in _leaves(EngineSettings)
    if any(isinstance(m, annotated_types.Gt) and m.gt == 0 for m in info.metadata)
)


def _camel(loc: tuple[str, ...]) -> str:
    # Independent of the code under test: pydantic's to_camel, plus the seed's one acronym.
    return ".".join("cacheTTL" if part == "cache_ttl" else to_camel(part) for part in loc)


def test_the_positive_only_settings_were_found() -> None:
    assert ("api", "timeout") in POSITIVE_ONLY
    assert ("order_management", "idempotency", "cache_ttl") in POSITIVE_ONLY
    assert len(POSITIVE_ONLY) >= 12


@given(loc=st.sampled_from(POSITIVE_ONLY), value=st.integers(max_value=0))
def test_non_positive_values_give_one_line_naming_the_key(loc: tuple[str, ...], value: int) -> None:
    try:
        load_settings(env={}, overrides={_camel(loc): value})
    except ConfigError as exc:
        [line] = exc.problems
        assert line.startswith(f"{_camel(loc)}: got {value} (command-line override); expected")
    else:
        raise AssertionError(f"{_camel(loc)}={value} was accepted")


_valid = st.fixed_dictionaries(
    {
        "api.timeout": st.integers(1, 10**7),
        "api.userHubUrl": st.sampled_from(["wss://h/hubs/user", "http://127.0.0.1:5000/hubs/user"]),
        "signalr.reconnection.delays": st.lists(st.integers(0, 10**6), min_size=1, max_size=8).map(sorted),
        "signalr.reconnection.maxAttempts": st.integers(1, 1000),
        "errorHandling.retries.backoffMultiplier": st.floats(1, 10, allow_nan=False),
        "errorHandling.rateLimit.dropOldest": st.booleans(),
        "logging.level": st.sampled_from(["debug", "INFO", "Warning", "ERROR"]),
        "accounts": st.one_of(st.none(), st.sets(st.integers(1, 10**9), min_size=1, max_size=5).map(sorted)),
        "authentication.tokenRefresh.bufferSeconds": st.integers(1, 86_399),
    }
)


@given(overrides=_valid)
def test_valid_settings_round_trip_through_the_printed_yaml(overrides: dict[str, Any]) -> None:
    settings = load_settings(env={}, overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "effective.yaml"
        path.write_text(effective_yaml(settings))
        again = load_settings(path, env={})
    assert again == settings
    assert effective_config(again) == effective_config(settings)
