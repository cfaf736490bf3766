"""Token storage: AES-256-GCM file store, memory store, key resolution, and never a secret in logs or reprs."""

from __future__ import annotations

import base64
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from engine.auth.storage import (
    HEADER,
    NONCE_BYTES,
    EncryptedFileTokenStore,
    MemoryTokenStore,
    StoredToken,
    TokenStorageError,
    generate_key,
    open_token_store,
    resolve_key,
    token_path,
)
from settings import EngineSettings, load_settings

SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.s1gnature-DO-NOT-LOG"
EXPIRES = datetime(2026, 5, 6, 13, 36, 3, 496279, tzinfo=UTC)


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def token() -> StoredToken:
    return StoredToken(token=SECRET, expires_at=EXPIRES, revision=7)


def settings(kind: str = "encrypted", path: Path | None = None, key_env: str = "TEST_TOKEN_KEY") -> EngineSettings:
    overrides = {
        "authentication.storage.type": kind,
        "authentication.storage.keyEnv": key_env,
        "authentication.storage.path": str(path) if path is not None else None,
    }
    return load_settings(env={}, overrides=overrides)


def test_round_trip_keeps_token_expiry_and_revision(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    store = EncryptedFileTokenStore(tmp_path / "state" / "token.bin", key)
    assert store.load() is None  # nothing stored yet
    store.save(token)
    again = EncryptedFileTokenStore(tmp_path / "state" / "token.bin", key).load()
    assert again == token
    assert again is not None and again.expires_at.tzinfo is not None
    assert SECRET.encode() not in (tmp_path / "state" / "token.bin").read_bytes()


def test_file_is_0600_and_its_directory_0700(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    path = tmp_path / "fresh" / "token.bin"
    old_umask = os.umask(0)  # even a permissive umask must not widen the modes
    try:
        EncryptedFileTokenStore(path, key).save(token)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["token.bin"]  # no temp file left behind


def test_each_write_uses_a_fresh_nonce(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    store = EncryptedFileTokenStore(tmp_path / "token.bin", key)
    blobs = []
    for _ in range(3):
        store.save(token)
        blobs.append(store.path.read_bytes())
    nonces = {blob[len(HEADER) : len(HEADER) + NONCE_BYTES] for blob in blobs}
    assert len(nonces) == 3
    assert len({blob for blob in blobs}) == 3
    assert all(blob.startswith(HEADER) for blob in blobs)


def test_save_replaces_the_previous_token(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    store = EncryptedFileTokenStore(tmp_path / "token.bin", key)
    store.save(token)
    newer = StoredToken(token="newer-token", expires_at=EXPIRES + timedelta(hours=24), revision=8)
    store.save(newer)
    assert store.load() == newer


def _corruptions(blob: bytes) -> dict[str, bytes]:
    flipped = bytearray(blob)
    flipped[-5] ^= 0x01
    header_flipped = bytearray(blob)
    header_flipped[len(HEADER)] ^= 0x80  # a nonce bit
    wrong_version = bytearray(blob)
    wrong_version[4] = 99
    return {
        "tampered ciphertext": bytes(flipped),
        "tampered nonce": bytes(header_flipped),
        "truncated": blob[: len(blob) // 2],
        "header only": blob[: len(HEADER) + 3],
        "empty": b"",
        "garbage": os.urandom(200),
        "plain json": b'{"token": "x"}',
        "unknown version": bytes(wrong_version),
    }


@pytest.mark.parametrize("damage", list(_corruptions(b"x" * 100)))
def test_damaged_file_gives_none_and_a_warning_without_the_token(
    tmp_path: Path, key: bytes, token: StoredToken, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    store = EncryptedFileTokenStore(tmp_path / "token.bin", key)
    store.save(token)
    store.path.write_bytes(_corruptions(store.path.read_bytes())[damage])
    with caplog.at_level(logging.DEBUG):
        assert store.load() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "a damaged token file must be reported"
    assert SECRET not in caplog.text
    assert base64.b64encode(key).decode() not in caplog.text


def test_wrong_key_gives_none_and_a_warning(
    tmp_path: Path, key: bytes, token: StoredToken, caplog: pytest.LogCaptureFixture
) -> None:
    EncryptedFileTokenStore(tmp_path / "token.bin", key).save(token)
    with caplog.at_level(logging.WARNING):
        assert EncryptedFileTokenStore(tmp_path / "token.bin", os.urandom(32)).load() is None
    assert "wrong key" in caplog.text
    assert SECRET not in caplog.text


def test_encrypted_record_with_bad_fields_gives_none(tmp_path: Path, key: bytes,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    bad = b'{"token": "abc", "expires_at": "not a date", "revision": 1}'
    (tmp_path / "token.bin").write_bytes(HEADER + nonce + AESGCM(key).encrypt(nonce, bad, HEADER))
    with caplog.at_level(logging.WARNING):
        assert EncryptedFileTokenStore(tmp_path / "token.bin", key).load() is None
    assert "no valid token record" in caplog.text


def test_clear_removes_the_file(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    store = EncryptedFileTokenStore(tmp_path / "token.bin", key)
    store.save(token)
    store.clear()
    assert not store.path.exists()
    store.clear()  # idempotent
    assert store.load() is None


def test_repr_and_str_never_show_the_token(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    for text in (repr(token), str(token), f"{token}", repr(EncryptedFileTokenStore(tmp_path / "t", key))):
        assert SECRET not in text
    assert "revision=7" in repr(token)


def test_stored_token_rejects_naive_expiry_and_empty_token() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StoredToken(token="t", expires_at=datetime(2026, 1, 1), revision=1)
    with pytest.raises(ValueError, match="empty"):
        StoredToken(token="", expires_at=EXPIRES, revision=1)


def test_memory_store_round_trip_and_clear(token: StoredToken) -> None:
    store = MemoryTokenStore()
    assert store.load() is None
    store.save(token)
    assert store.load() == token
    store.clear()
    assert store.load() is None


def test_open_token_store_by_type(tmp_path: Path, token: StoredToken) -> None:
    assert isinstance(open_token_store(settings("memory"), env={}), MemoryTokenStore)
    env = {"TEST_TOKEN_KEY": generate_key()}
    store = open_token_store(settings(path=tmp_path / "token.bin"), env=env)
    assert isinstance(store, EncryptedFileTokenStore)
    store.save(token)
    assert open_token_store(settings(path=tmp_path / "token.bin"), env=env).load() == token
    assert token_path(settings(path=tmp_path / "token.bin")) == tmp_path / "token.bin"


def test_missing_key_is_a_startup_error_naming_the_variable_and_keygen(tmp_path: Path) -> None:
    with pytest.raises(TokenStorageError) as excinfo:
        open_token_store(settings(path=tmp_path / "t", key_env="MY_ENGINE_KEY"), env={})
    message = str(excinfo.value)
    assert "MY_ENGINE_KEY" in message
    assert "python -m engine token keygen" in message


@pytest.mark.parametrize("bad", ["not base64 !!", base64.b64encode(b"short").decode(), "   "])
def test_malformed_key_is_a_startup_error_without_the_key(bad: str) -> None:
    with pytest.raises(TokenStorageError) as excinfo:
        resolve_key("MY_ENGINE_KEY", env={"MY_ENGINE_KEY": bad})
    message = str(excinfo.value)
    assert "MY_ENGINE_KEY" in message and "keygen" in message
    if bad.strip():
        assert bad not in message


def test_keyring_source_falls_back_to_the_environment_when_keyring_is_absent() -> None:
    key = generate_key()
    assert resolve_key("K", "keyring", env={"K": key}) == base64.b64decode(key)
    with pytest.raises(TokenStorageError, match="keyring"):
        resolve_key("K", "keyring", env={})
    with pytest.raises(TokenStorageError, match="keySource"):
        resolve_key("K", "vault", env={"K": key})


async def test_store_calls_run_in_a_worker_thread(tmp_path: Path, key: bytes, token: StoredToken) -> None:
    """How the token manager uses the store: blocking file I/O off the Trio thread."""
    store = EncryptedFileTokenStore(tmp_path / "token.bin", key)
    await trio.to_thread.run_sync(store.save, token)
    assert await trio.to_thread.run_sync(store.load) == token
