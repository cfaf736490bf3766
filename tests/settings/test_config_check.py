"""``python -m engine config check``: effective YAML with camelCase keys, secrets redacted, exit codes 0/2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from engine.__main__ import main
from settings import effective_config, load_settings

SECRET = "s3cr3t-api-key-value"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TOPSTEPX_USERNAME", "TOPSTEPX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./config.yaml


def test_valid_seed_prints_camelcase_yaml_and_exits_0(seed_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(seed_config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    printed = yaml.safe_load(out)
    assert printed["api"]["baseUrl"] == "https://gateway.topstepx.com"
    assert printed["errorHandling"]["rateLimit"]["history"] == {"requests": 50, "windowSeconds": 30}
    assert printed["orderManagement"]["idempotency"]["cacheTTL"] == 3600
    assert printed["authentication"]["storage"]["keyEnv"] == "TOPSTEPX_TOKEN_KEY"
    assert printed == effective_config(load_settings(seed_config))


def test_secrets_are_redacted_and_output_round_trips(
    seed_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TOPSTEPX_API_KEY", SECRET)
    monkeypatch.setenv("TOPSTEPX_USERNAME", "trader")
    monkeypatch.setenv("ENGINE_SIGNALR__RECONNECTION__MAX_ATTEMPTS", "4")
    assert main(["config", "check", "--config", str(seed_config), "--set", "logging.level=DEBUG"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out and SECRET not in err
    assert "apiKey: '**********'" in out
    printed = yaml.safe_load(out)
    assert printed["credentials"] == {"username": "trader", "apiKey": "**********"}
    assert printed["signalr"]["reconnection"]["maxAttempts"] == 4
    assert printed["logging"]["level"] == "DEBUG"
    # The printed configuration is itself a valid config file that yields the same settings.
    again = tmp_path / "effective.yaml"
    again.write_text(out)
    assert effective_config(load_settings(again, env={})) == printed


def test_invalid_config_exits_2_with_one_line_per_problem(
    write_yaml: Callable[[str], Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOPSTEPX_API_KEY", SECRET)
    path = write_yaml("signalr: {reconnection: {delays: [5, 1]}}\nlogging: {level: NOISY}\n")
    assert main(["config", "check", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("signalr.reconnection.delays: got [5, 1];")
    assert lines[1].startswith('logging.level: got "NOISY";')
    assert SECRET not in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert capsys.readouterr().err.strip().endswith("absent.yaml: config file not found")


def test_bad_set_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--set", "api.timeout"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_config_yaml_in_the_working_directory_is_used_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.yaml").write_text("api: {timeout: 1234}\n")
    assert main(["config", "check"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["api"]["timeout"] == 1234


def test_config_without_action_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 2
    assert "check" in capsys.readouterr().out
