"""Bad configurations stop loading with ONE line per problem: the camelCase YAML path, the value, the expectation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from settings import ConfigError, load_settings

# (YAML text, dotted camelCase path the line must start with, rendering of the bad value that must appear)
BAD_CONFIGS = [
    pytest.param(
        "signalr:\n  reconection: {maxAttempts: 3}\n",
        "signalr.reconection",
        "did you mean 'reconnection'",
        id="unknown-key",
    ),
    pytest.param("api:\n  base_url: 'https://x'\n", "api.base_url", "did you mean 'baseUrl'", id="snake-case-key"),
    pytest.param("api: {timeout: abc}\n", "api.timeout", '"abc"', id="wrong-type"),
    pytest.param("api: {timeout: -5}\n", "api.timeout", "-5", id="negative-timeout"),
    pytest.param(
        "orderManagement: {verification: {timeout: 0}}\n",
        "orderManagement.verification.timeout",
        "0",
        id="zero-timeout",
    ),
    pytest.param(
        "errorHandling: {rateLimit: {general: {windowSeconds: 0}}}\n",
        "errorHandling.rateLimit.general.windowSeconds",
        "0",
        id="zero-window",
    ),
    pytest.param("signalr: {reconnection: {delays: []}}\n", "signalr.reconnection.delays", "[]", id="empty-delays"),
    pytest.param(
        "signalr: {reconnection: {delays: [0, 5000, 2000]}}\n",
        "signalr.reconnection.delays",
        "[0, 5000, 2000]",
        id="decreasing-delays",
    ),
    pytest.param(
        "signalr: {reconnection: {delays: [0, -1]}}\n", "signalr.reconnection.delays[1]", "-1", id="negative-delay"
    ),
    pytest.param(
        "authentication: {tokenRefresh: {bufferSeconds: 86400}}\n",
        "authentication.tokenRefresh.bufferSeconds",
        "86400",
        id="buffer-not-below-lifetime",
    ),
    pytest.param(
        "errorHandling: {retries: {maxAttempts: 0}}\n", "errorHandling.retries.maxAttempts", "0", id="max-attempts-zero"
    ),
    pytest.param(
        "signalr: {reconnection: {maxAttempts: -2}}\n",
        "signalr.reconnection.maxAttempts",
        "-2",
        id="reconnect-attempts-negative",
    ),
    pytest.param(
        "errorHandling: {rateLimit: {queueSize: 0}}\n", "errorHandling.rateLimit.queueSize", "0", id="queue-size-zero"
    ),
    pytest.param("api: {baseUrl: 'not a url'}\n", "api.baseUrl", '"not a url"', id="malformed-url"),
    pytest.param(
        "api: {userHubUrl: 'ftp://rtc.topstepx.com/hubs/user'}\n", "api.userHubUrl", "ftp://", id="hub-url-scheme"
    ),
    pytest.param("api: {marketHubUrl: 'wss://:99999/x'}\n", "api.marketHubUrl", "99999", id="hub-url-no-host"),
    pytest.param("logging: {level: VERBOSE}\n", "logging.level", '"VERBOSE"', id="unknown-log-level"),
    pytest.param(
        "database: {retention: {orderHistory: 0}}\n", "database.retention.orderHistory", "0", id="retention-zero"
    ),
    pytest.param("database: {url: 'engine.db'}\n", "database.url", '"engine.db"', id="database-url"),
    pytest.param(
        "signalr: {health: {pingTimeout: true}}\n", "signalr.health.pingTimeout", "true", id="bool-for-number"
    ),
    pytest.param(
        "orderManagement: {verification: {maxRetries: 1.5}}\n",
        "orderManagement.verification.maxRetries",
        "1.5",
        id="fractional-int",
    ),
    pytest.param(
        "orderManagement: {idempotency: {cacheTTL: 0}}\n", "orderManagement.idempotency.cacheTTL", "0", id="acronym-key"
    ),
    pytest.param("signalr: 5\n", "signalr", "5", id="section-not-mapping"),
    pytest.param(
        "authentication: {storage: {type: disk}}\n", "authentication.storage.type", '"disk"', id="storage-type"
    ),
    pytest.param(
        "authentication: {storage: {keySource: vault}}\n",
        "authentication.storage.keySource",
        '"vault"',
        id="key-source",
    ),
    pytest.param(
        "errorHandling: {retries: {retryableErrors: [429, 42]}}\n",
        "errorHandling.retries.retryableErrors[1]",
        "42",
        id="status-code",
    ),
    pytest.param(
        "errorHandling: {retries: {backoffMultiplier: 0.5}}\n",
        "errorHandling.retries.backoffMultiplier",
        "0.5",
        id="multiplier",
    ),
    pytest.param(
        "signalr: {health: {pingInterval: 200000}}\n", "signalr.health.staleThreshold", "120000", id="stale-below-ping"
    ),
    pytest.param("accounts: []\n", "accounts", "[]", id="no-accounts"),
    pytest.param("accounts: [7, 7]\n", "accounts", "[7, 7]", id="duplicate-accounts"),
    pytest.param("stateReconciliation: {enabled: maybe}\n", "stateReconciliation.enabled", '"maybe"', id="not-a-bool"),
]


@pytest.mark.parametrize(("text", "path", "value"), BAD_CONFIGS)
def test_one_line_naming_the_yaml_path(write_yaml: Callable[[str], Path], text: str, path: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_yaml(text), env={})
    problems = info.value.problems
    assert len(problems) == 1, problems
    [line] = problems
    assert "\n" not in line
    assert line.startswith(f"{path}:") or line.startswith(f"{path} "), line
    assert value in line
    assert "expected" in line
    assert str(info.value) == line


def test_every_problem_is_reported_at_once(write_yaml: Callable[[str], Path]) -> None:
    text = "api: {timeout: 0, colour: red}\nlogging: {level: LOUD}\ndatabase: {retention: {enforcementLogs: 0}}\n"
    with pytest.raises(ConfigError) as info:
        load_settings(write_yaml(text), env={"ENGINE_API__BASE_URL": "nope"})
    assert sorted(line.split(":")[0] for line in info.value.problems) == [
        "ENGINE_API__BASE_URL (api.baseUrl)",
        "api.colour",
        "api.timeout",
        "database.retention.enforcementLogs",
        "logging.level",
    ]


def test_secret_values_never_appear_in_errors(write_yaml: Callable[[str], Path]) -> None:
    text = "credentials: {apiKey: [hunter2-secret]}\n"
    with pytest.raises(ConfigError) as info:
        load_settings(write_yaml(text), env={})
    [line] = info.value.problems
    assert line.startswith("credentials.apiKey: got '**********'")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(write_yaml("credentials: hunter2-secret\n"), env={})
    assert "hunter2" not in str(info.value)
    assert str(info.value).startswith("credentials:")


# --- the file itself ------------------------------------------------------------------------------------------------


def _file_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [line] = info.value.problems
    return line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert _file_problem(path) == f"{path}: config file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "is a directory" in _file_problem(tmp_path)


def test_yaml_syntax_error_names_the_line(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml("api:\n  timeout: 5\n  baseUrl: [unclosed\nlogging: {}\n")
    line = _file_problem(path)
    assert line.startswith(f"{path}: invalid YAML at line ")
    assert "line 4" in line or "line 3" in line


def test_yaml_error_does_not_quote_the_offending_line(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml("credentials:\n  apiKey: 'sekrit-value\n")
    line = _file_problem(path)
    assert "invalid YAML at line" in line and "sekrit" not in line


def test_top_level_must_be_a_mapping(write_yaml: Callable[[str], Path]) -> None:
    assert "top level must be a mapping" in _file_problem(write_yaml("- api\n- signalr\n"))
    assert "top level must be a mapping" in _file_problem(write_yaml("just text\n"))


def test_duplicate_key_is_refused_with_its_line(write_yaml: Callable[[str], Path]) -> None:
    line = _file_problem(write_yaml("api:\n  timeout: 1000\n  timeout: 2000\n"))
    assert "line 3" in line and "'timeout' appears twice" in line


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("logging: {level: 'é'}\n".encode("latin-1"))
    assert "not UTF-8" in _file_problem(path)


def test_no_traceback_from_the_command_line(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml("signalr: {reconnection: {delays: []}}\napi: {timeout: -1}\n")
    done = subprocess.run(
        [sys.executable, "-m", "engine", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert [line.split(":")[0] for line in lines] == ["api.timeout", "signalr.reconnection.delays"]
