"""The PostgreSQL test helper says plainly why PostgreSQL tests would be skipped."""

from __future__ import annotations

import pytest

from tests.store import pgserver


def test_no_binaries_and_no_url_names_both_remedies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pgserver.ENV_URL, raising=False)
    monkeypatch.setattr(pgserver, "_bin_dir", lambda: None)
    with pytest.raises(pgserver.PgUnavailable, match=r"install Debian's 'postgresql' package .* ENGINE_TEST_PG_URL"):
        pgserver.start()


def test_an_explicit_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pgserver.ENV_URL, "postgresql://u@127.0.0.1:5999/postgres")
    server = pgserver.start()
    assert server.url_for("x") == "postgresql://u@127.0.0.1:5999/x"
    server.stop()  # nothing of ours to stop
