"""Precedence: defaults < YAML < ENGINE_* environment < overrides; nested values deep-merge; credentials from env."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from settings import ConfigError, load_settings

RATE_YAML = "errorHandling:\n  rateLimit:\n    history: {requests: 10, windowSeconds: 5}\n    queueSize: 12\n"


def test_yaml_beats_defaults(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml(RATE_YAML), env={})
    assert s.error_handling.rate_limit.history.requests == 10
    assert s.error_handling.rate_limit.general.requests == 200  # untouched default


def test_nested_env_overrides_yaml_and_deep_merges(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml(RATE_YAML), env={"ENGINE_ERROR_HANDLING__RATE_LIMIT__HISTORY__REQUESTS": "99"})
    history = s.error_handling.rate_limit.history
    assert (history.requests, history.window_seconds) == (99, 5)  # sibling from the YAML survives
    assert s.error_handling.rate_limit.queue_size == 12
    assert s.error_handling.rate_limit.general.requests == 200


def test_overrides_beat_env_and_yaml(write_yaml: Callable[[str], Path]) -> None:
    env = {"ENGINE_ERROR_HANDLING__RATE_LIMIT__HISTORY__REQUESTS": "99", "ENGINE_API__TIMEOUT": "1234"}
    s = load_settings(
        write_yaml(RATE_YAML),
        env=env,
        overrides={"errorHandling.rateLimit.history.requests": 7, "api": {"timeout": None}},
    )
    assert s.error_handling.rate_limit.history.requests == 7
    assert s.error_handling.rate_limit.history.window_seconds == 5
    assert s.api.timeout == 1234  # a None override means "flag not given"


def test_overrides_accept_snake_case_and_nested_mappings() -> None:
    s = load_settings(env={}, overrides={"signalr": {"reconnection": {"max_attempts": 2}}, "logging.level": "ERROR"})
    assert s.signalr.reconnection.max_attempts == 2
    assert s.logging.level == "ERROR"


def test_env_lists_and_booleans() -> None:
    s = load_settings(
        env={
            "ENGINE_SIGNALR__RECONNECTION__DELAYS": "[0, 100, 200]",
            "ENGINE_ACCOUNTS": "[11, 12]",
            "ENGINE_STATE_RECONCILIATION__ENABLED": "false",
            "ENGINE_LOGGING__LEVEL": "warning",
        }
    )
    assert s.signalr.reconnection.delays == [0, 100, 200]
    assert s.accounts == [11, 12]
    assert s.state_reconciliation.enabled is False
    assert s.logging.level == "WARNING"


def test_env_null_list_means_all_accounts(write_yaml: Callable[[str], Path]) -> None:
    assert load_settings(write_yaml("accounts: [5]\n"), env={"ENGINE_ACCOUNTS": "null"}).accounts is None


def test_env_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_API__TIMEOUT", "4321")
    assert load_settings().api.timeout == 4321


def test_credentials_come_from_fixed_env_names_and_win_over_yaml(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml("credentials: {username: file-user, apiKey: file-key}\n")
    from_file = load_settings(path, env={})
    assert from_file.credentials.username == "file-user"
    assert from_file.credentials.api_key is not None
    assert from_file.credentials.api_key.get_secret_value() == "file-key"
    s = load_settings(path, env={"TOPSTEPX_USERNAME": "env-user", "TOPSTEPX_API_KEY": "env-key"})
    assert s.credentials.username == "env-user"
    assert s.credentials.api_key is not None and s.credentials.api_key.get_secret_value() == "env-key"
    assert "env-key" not in repr(s) and "env-key" not in str(s.credentials)


def test_empty_credential_variable_does_not_blank_the_file_value(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml("credentials: {apiKey: file-key}\n"), env={"TOPSTEPX_API_KEY": ""})
    assert s.credentials.api_key is not None and s.credentials.api_key.get_secret_value() == "file-key"


def test_env_problem_names_the_variable_and_the_yaml_path(write_yaml: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_yaml("api: {timeout: 5}\n"), env={"ENGINE_API__TIMEOUT": "-3"})
    assert info.value.problems == ['ENGINE_API__TIMEOUT (api.timeout): got "-3"; expected a number greater than 0']


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ENGINE_SIGNALR__RECONECTION__MAX_ATTEMPTS", "3", "did you mean ENGINE_SIGNALR__RECONNECTION?"),
        ("ENGINE_SIGNALR__RECONNECTION", "{}", "names a whole section"),
        ("ENGINE_API__TIMEOUT__MS", "3", "is a single value"),
        ("ENGINE_SIGNALR__RECONNECTION__DELAYS", "1000,2000", "expected JSON"),
        ("ENGINE_API_TIMEOUT", "5000", "did you mean ENGINE_API__TIMEOUT?"),
        ("ENGINE_ACCOUNTS_TO_WATCH", "[1]", "ENGINE_ACCOUNTS_TO_WATCH: no such setting"),
    ],
)
def test_bad_env_variables_are_named(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: value})
    [line] = info.value.problems
    assert line.startswith(f"{name}:")
    assert fragment in line


def test_engine_variables_of_other_tools_are_left_alone() -> None:
    assert load_settings(env={"ENGINE_TEST_PG_URL": "postgresql://x", "ENGINEER": "1"}) == load_settings(env={})


def test_override_problem_says_it_came_from_the_command_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"api.timeout": 0, "api.tiemout": 5})
    assert sorted(info.value.problems) == [
        "api.tiemout (command-line override): unknown key; did you mean 'timeout'? "
        "(expected one of: baseUrl, timeout, userHubUrl, marketHubUrl)",
        "api.timeout: got 0 (command-line override); expected a number greater than 0",
    ]
