"""The seed file loads unchanged, the defaults are the seed's values, and the extra keys have sensible defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from settings import EngineSettings, effective_config, load_settings


def _assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Every key/value of ``expected`` (the seed) is present and equal in ``actual`` (the effective config)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            _assert_subset(value, actual[key], f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_seed_file_loads_unchanged_with_its_values(seed_config: Path) -> None:
    seed = yaml.safe_load(seed_config.read_text())
    loaded = load_settings(seed_config, env={})
    _assert_subset(seed, effective_config(loaded))
    assert loaded.api.base_url == "https://gateway.topstepx.com"
    assert loaded.order_management.idempotency.cache_ttl == 3600
    assert loaded.signalr.reconnection.delays == [0, 2000, 10000, 30000, 60000]
    assert loaded.error_handling.retries.retryable_errors == [408, 429, 500, 502, 503, 504]


def test_defaults_are_the_seed_values_apart_from_the_real_rest_host(seed_config: Path) -> None:
    seed = yaml.safe_load(seed_config.read_text())
    seed["api"]["baseUrl"] = "https://api.topstepx.com"
    _assert_subset(seed, effective_config(EngineSettings()))


def test_extra_keys_have_documented_defaults() -> None:
    s = EngineSettings()
    assert s.api.user_hub_url == "https://rtc.topstepx.com/hubs/user"
    assert s.api.market_hub_url == "https://rtc.topstepx.com/hubs/market"
    assert s.authentication.storage.key_env == "TOPSTEPX_TOKEN_KEY"
    assert s.accounts is None
    assert s.credentials.username is None and s.credentials.api_key is None
    state_dir = Path("~/.local/state/topstepx-engine").expanduser()
    assert s.state_dir == state_dir
    assert s.authentication.storage.path == state_dir / "token.enc"
    assert s.database.url == f"sqlite:///{state_dir / 'engine.db'}"
    assert s.database.sqlite_path == state_dir / "engine.db"


def test_defaults_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_API__TIMEOUT", "1")
    monkeypatch.setenv("TOPSTEPX_API_KEY", "from-env")
    s = EngineSettings()
    assert s.api.timeout == 30_000
    assert s.credentials.api_key is None


def test_state_dir_moves_the_default_files_but_not_explicit_ones(write_yaml: Callable[[str], Path]) -> None:
    moved = load_settings(write_yaml("stateDir: /srv/engine\n"), env={})
    assert moved.authentication.storage.path == Path("/srv/engine/token.enc")
    assert moved.database.url == "sqlite:////srv/engine/engine.db"
    explicit = load_settings(
        write_yaml(
            "stateDir: /srv/engine\nauthentication: {storage: {path: ~/tok.enc}}\ndatabase: {url: 'sqlite://'}\n"
        ),
        env={},
    )
    assert explicit.authentication.storage.path == Path("~/tok.enc").expanduser()
    assert explicit.database.url == "sqlite://"
    assert explicit.database.sqlite_path is None


def test_home_is_expanded_in_sqlite_urls(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml("database: {url: 'sqlite:///~/e.db'}\n"), env={})
    assert s.database.url == f"sqlite:///{Path('~/e.db').expanduser()}"


def test_conveniences_for_drivers(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(
        write_yaml(
            "api: {timeout: 2500, userHubUrl: 'http://127.0.0.1:8000/hubs/user', marketHubUrl: 'wss://h/hubs/market'}\n"
        ),
        env={},
    )
    assert s.api.timeout_s == 2.5
    assert s.api.user_hub_ws_url == "ws://127.0.0.1:8000/hubs/user"
    assert s.api.market_hub_ws_url == "wss://h/hubs/market"
    assert EngineSettings().api.user_hub_ws_url == "wss://rtc.topstepx.com/hubs/user"
    assert s.signalr.reconnection.delays_s == (0.0, 2.0, 10.0, 30.0, 60.0)
    assert s.signalr.health.stale_threshold_s == 120.0
    assert s.error_handling.circuit_breaker.timeout_s == 60.0
    assert s.authentication.token_refresh.retry_delays_s == (1.0, 5.0, 15.0)


def test_empty_file_and_empty_sections_mean_defaults(write_yaml: Callable[[str], Path]) -> None:
    assert load_settings(write_yaml(""), env={}) == EngineSettings()
    assert load_settings(write_yaml("api:\nlogging:\n  # level: DEBUG\n"), env={}) == EngineSettings()


def test_log_level_is_case_insensitive(write_yaml: Callable[[str], Path]) -> None:
    assert load_settings(write_yaml("logging: {level: debug}\n"), env={}).logging.level == "DEBUG"


def test_partial_rate_limit_window_keeps_its_own_defaults(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml("errorHandling: {rateLimit: {general: {requests: 7}}}\n"), env={})
    assert (s.error_handling.rate_limit.general.requests, s.error_handling.rate_limit.general.window_seconds) == (7, 60)
    assert s.error_handling.rate_limit.history.requests == 50


def test_settings_are_immutable() -> None:
    s = EngineSettings()
    with pytest.raises(pydantic.ValidationError):
        s.api.timeout = 1  # type: ignore[misc]


def test_example_config_is_valid_and_spells_out_the_defaults() -> None:
    example = Path(__file__).parents[2] / "config.example.yaml"
    assert load_settings(example, env={}) == EngineSettings()
    written = yaml.safe_load(example.read_text())
    _assert_subset(written, effective_config(EngineSettings()))


def _key_names(data: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            names.add(key)
            names |= _key_names(value)
    return names


def test_example_config_mentions_every_key() -> None:
    text = (Path(__file__).parents[2] / "config.example.yaml").read_text()
    missing = sorted(name for name in _key_names(effective_config(EngineSettings())) if f"{name}:" not in text)
    assert missing == []
