"""Token storage (seed GAP-API-002): the session token kept across restarts, encrypted at rest, or only in memory.

Why: a Gateway token is a 24-hour bearer credential; written in clear to disk it is as good as the API key. Keeping
it lets a restart skip a login (logins count against the rate limit), but a damaged or unreadable file must never
stop the engine: it only costs a fresh login.

- ``memory``: :class:`MemoryTokenStore`, nothing touches the disk.
- ``encrypted``: :class:`EncryptedFileTokenStore`, AES-256-GCM with a random 12-byte nonce per write. File layout:
  ``MAGIC (4 bytes) | VERSION (1 byte) | nonce (12) | ciphertext+tag``; the magic and version are authenticated as
  associated data, the plaintext is JSON ``{"token", "expires_at", "revision"}``. Writes are atomic (temp file in
  the same directory, fsync, ``os.replace``, then fsync of the directory), the file is 0600 and its directory 0700.
- The key (base64 of 32 bytes) comes from the environment variable named by ``authentication.storage.key_env``, or
  from the OS keyring when ``key_source`` is ``keyring`` and the optional ``keyring`` package is importable. A
  missing or malformed key is a start-up error (:class:`TokenStorageError`) naming the variable and the keygen
  command. A wrong key, a tampered, truncated or foreign file: a warning (never the token or key) and ``load()``
  returns ``None``, so the caller logs in afresh.

These calls do blocking file I/O: the token manager calls them through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

MAGIC = b"TSXT"
VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
HEADER = MAGIC + bytes([VERSION])
DEFAULT_KEY_ENV = "TOPSTEPX_TOKEN_KEY"
KEYRING_SERVICE = "topstepx-engine"
KEYGEN_COMMAND = "python -m engine token keygen"


class TokenStorageError(Exception):
    """The token store cannot be set up (missing or malformed key, unknown storage type). A start-up error."""


@dataclass(frozen=True)
class StoredToken:
    """A session token with its expiry (aware) and revision (the token manager's fence). Never shows the token."""

    token: str = field(repr=False)
    expires_at: datetime
    revision: int

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("StoredToken.expires_at must be timezone-aware")
        if not self.token:
            raise ValueError("StoredToken.token must not be empty")

    def __str__(self) -> str:
        return repr(self)

    def to_json(self) -> bytes:
        return json.dumps(
            {"token": self.token, "expires_at": self.expires_at.isoformat(), "revision": self.revision}
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredToken:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("token record is not an object")
        token, expires, revision = obj.get("token"), obj.get("expires_at"), obj.get("revision")
        if not isinstance(token, str) or not isinstance(expires, str) or type(revision) is not int:
            raise ValueError("token record has missing or mistyped fields")
        return cls(token=token, expires_at=datetime.fromisoformat(expires), revision=revision)


class TokenStore(Protocol):
    def load(self) -> StoredToken | None: ...

    def save(self, token: StoredToken) -> None: ...

    def clear(self) -> None: ...


class MemoryTokenStore:
    """Keeps the token for the life of the process only (``authentication.storage.type: memory``)."""

    def __init__(self) -> None:
        self._token: StoredToken | None = None

    def load(self) -> StoredToken | None:
        return self._token

    def save(self, token: StoredToken) -> None:
        self._token = token

    def clear(self) -> None:
        self._token = None


class EncryptedFileTokenStore:
    """AES-256-GCM encrypted token file (see the module docstring for the format and guarantees)."""

    def __init__(self, path: Path | str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise TokenStorageError(f"token encryption key must be {KEY_BYTES} bytes, got {len(key)}")
        self.path = Path(path).expanduser()
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return f"EncryptedFileTokenStore(path={str(self.path)!r})"

    def load(self) -> StoredToken | None:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("token file %s is unreadable (%s); a fresh login will be needed", self.path,
                        type(exc).__name__)
            return None
        if len(blob) < len(HEADER) + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            log.warning("token file %s is not a token file or is truncated (%d bytes); ignoring it", self.path,
                        len(blob))
            return None
        if blob[len(MAGIC)] != VERSION:
            log.warning("token file %s has unsupported format version %d; ignoring it", self.path, blob[len(MAGIC)])
            return None
        nonce = blob[len(HEADER) : len(HEADER) + NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, blob[len(HEADER) + NONCE_BYTES :], HEADER)
        except InvalidTag:
            log.warning("token file %s failed authentication (wrong key, or the file was altered); ignoring it",
                        self.path)
            return None
        try:
            return StoredToken.from_json(plain)
        except (ValueError, TypeError):
            log.warning("token file %s decrypted but holds no valid token record; ignoring it", self.path)
            return None

    def save(self, token: StoredToken) -> None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        blob = HEADER + nonce + self._aead.encrypt(nonce, token.to_json(), HEADER)
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)  # mkstemp already creates 0600; be explicit whatever the umask
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_directory(directory)

    def clear(self) -> None:
        remove_token_file(self.path)


def remove_token_file(path: Path | str) -> bool:
    """Delete the token file (no key needed). True if a file was removed."""
    target = Path(path).expanduser()
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    _fsync_directory(target.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink durable. Not every platform can open a directory; that is not an error."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded (what ``token keygen`` prints)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(encoded: str, source: str) -> bytes:
    """Decode a base64 key; ``source`` names where it came from for the error message (never the key itself)."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise TokenStorageError(
            f"{source} is not valid base64; generate a key with `{KEYGEN_COMMAND}`"
        ) from None
    if len(key) != KEY_BYTES:
        raise TokenStorageError(
            f"{source} must be base64 of {KEY_BYTES} bytes (AES-256), it decodes to {len(key)} bytes; "
            f"generate a key with `{KEYGEN_COMMAND}`"
        )
    return key


def _keyring_key(name: str) -> str | None:
    """The key stored in the OS keyring under (``KEYRING_SERVICE``, ``name``), if keyring exists and has one."""
    try:
        import keyring  # optional dependency, never required
    except ImportError:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    except Exception as exc:  # NoKeyringError and backend failures: treat as "no keyring"
        log.warning("OS keyring unavailable (%s); falling back to the environment", type(exc).__name__)
        return None
    return value if isinstance(value, str) else None


def resolve_key(key_env: str, key_source: str = "environment", env: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte key from the keyring (``key_source == "keyring"``, when available) or the environment variable.

    Raises :class:`TokenStorageError` naming the variable and the keygen command when no usable key is found.
    """
    environ = os.environ if env is None else env
    if key_source == "keyring":
        stored = _keyring_key(key_env)
        if stored is not None:
            return decode_key(stored, f"the OS keyring entry {KEYRING_SERVICE}/{key_env}")
    elif key_source != "environment":
        raise TokenStorageError(
            f"authentication.storage.keySource must be 'environment' or 'keyring', got {key_source!r}"
        )
    encoded = environ.get(key_env)
    if encoded is None or not encoded.strip():
        where = "the OS keyring (install `keyring`) or " if key_source == "keyring" else ""
        raise TokenStorageError(
            f"encrypted token storage needs a key in {where}the environment variable {key_env} "
            f"(base64 of {KEY_BYTES} bytes); create one with `{KEYGEN_COMMAND}` and export it, "
            "or set authentication.storage.type: memory"
        )
    return decode_key(encoded, f"environment variable {key_env}")


def open_token_store(settings: EngineSettings, env: Mapping[str, str] | None = None) -> TokenStore:
    """The store configured in ``settings.authentication.storage`` (``EngineSettings``). Start-up errors raise
    :class:`TokenStorageError`."""
    storage = settings.authentication.storage
    kind = storage.type
    if kind == "memory":
        return MemoryTokenStore()
    if kind != "encrypted":
        raise TokenStorageError(f"authentication.storage.type must be 'encrypted' or 'memory', got {kind!r}")
    key = resolve_key(storage.key_env, storage.key_source, env)
    return EncryptedFileTokenStore(token_path(settings), key)


def token_path(settings: EngineSettings) -> Path:
    """The token file configured in ``authentication.storage.path``."""
    return Path(settings.authentication.storage.path).expanduser()
