"""``python -m engine token keygen|clear``."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.__main__ import main
from engine.auth.storage import EncryptedFileTokenStore, StoredToken


def test_keygen_prints_a_base64_32_byte_key_and_the_export_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "keygen"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert f"export TOPSTEPX_TOKEN_KEY='{key}'" in err
    assert main(["token", "keygen"]) == 0
    assert capsys.readouterr().out.strip() != key  # random each time


def test_clear_with_a_path_removes_the_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "token.bin"
    EncryptedFileTokenStore(path, os.urandom(32)).save(
        StoredToken(token="secret", expires_at=datetime(2026, 1, 1, tzinfo=UTC), revision=1)
    )
    assert main(["token", "clear", "--path", str(path)]) == 0
    assert not path.exists()
    assert "removed" in capsys.readouterr().out
    assert main(["token", "clear", "--path", str(path)]) == 0
    assert "no stored token" in capsys.readouterr().out


def test_token_without_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token"]) == 2
    assert "keygen" in capsys.readouterr().out


def test_clear_reads_the_token_path_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state" / "token.enc"
    EncryptedFileTokenStore(path, os.urandom(32)).save(
        StoredToken(token="secret", expires_at=datetime(2026, 1, 1, tzinfo=UTC), revision=1)
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"authentication:\n  storage:\n    type: encrypted\n    path: '{path}'\n")
    assert main(["token", "clear", "--config", str(config)]) == 0
    assert not path.exists()


def test_keygen_names_the_configured_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("authentication:\n  storage:\n    keyEnv: MY_DESK_TOKEN_KEY\n")
    assert main(["token", "keygen", "--config", str(config)]) == 0
    assert "export MY_DESK_TOKEN_KEY=" in capsys.readouterr().err


def test_clear_with_a_bad_config_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("authentication:\n  storage:\n    type: plaintext\n")
    assert main(["token", "clear", "--config", str(config)]) == 2
    assert "type" in capsys.readouterr().err
