"""Redaction of secrets from everything the engine logs.

Why two nets: a registry of the *known* secret values (the API key, every session token the token manager has seen,
the token-encryption key) catches them in any shape they are logged in, and patterns catch what nobody registered:
anything that looks like a JWT (the Gateway's session tokens are JWTs), an ``Authorization: Bearer ...`` value, an
``access_token=`` query value (the hubs carry the token in their URL) and ``apiKey``/``token``/``password`` fields of
a logged JSON or form body. Redaction runs on the message after ``%``-formatting (so args are covered), on the
exception traceback text, on the stack text and on string ``extra`` fields; the formatters then run it once more on
the finished line (:mod:`engine.logs.formatting`), so a secret inside a dict or a repr cannot slip through either.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6
"""Shorter registered values are ignored: masking every "abc" in every line would destroy the log, not protect it."""

_JWT = re.compile(
    r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # a JSON header: {"... -> eyJ
    r"|(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"  # any 3 long base64url parts
)
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_ACCESS_TOKEN = re.compile(r"(?i)(access_token=)[^&\s'\"#<>]+")
_FIELDS = re.compile(
    r"""(?ix)
    (["']?\b(?:api_?key|new_?token|access_?token|refresh_?token|token|password|secret|encryption_?key)\b["']?
     \s*[:=]\s*["']?)
    ((?!\[REDACTED\])[^"'\s,;&}\])]+)
    """
)


def _variants(secret: str) -> set[str]:
    """The secret as it may appear in a URL, a form body or a JSON string."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


class SecretRegistry:
    """The secret values to mask. Thread-safe (log records may come from worker threads); values are never exposed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str | bytes | None) -> None:
        """Mask ``value`` from now on (bytes are registered as their base64 and hex spellings too)."""
        if value is None:
            return
        candidates: set[str] = set()
        if isinstance(value, bytes):
            candidates |= {base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode(), value.hex()}
            candidates |= {c.rstrip("=") for c in candidates}
        else:
            candidates.add(value)
        fresh = {v for c in candidates if len(c.strip()) >= MIN_SECRET_LENGTH for v in _variants(c.strip())}
        with self._lock:
            if not fresh <= self._values:
                self._values |= fresh
                self._pattern = None

    def register_all(self, values: Iterable[str | bytes | None]) -> None:
        for value in values:
            self.register(value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._values)

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial masks
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            return self._pattern


SECRETS = SecretRegistry()
"""The process-wide registry :func:`engine.logs.setup_logging` installs by default."""


def register_secret(value: str | bytes | None) -> None:
    """Mask ``value`` in every log line from now on (the token manager calls this for every token it sees)."""
    SECRETS.register(value)


def redact(text: str, registry: SecretRegistry | None = SECRETS) -> str:
    """``text`` with every registered secret and every token-looking value replaced by ``[REDACTED]``."""
    if registry is not None:
        pattern = registry.pattern()
        if pattern is not None:
            text = pattern.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _ACCESS_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _FIELDS.sub(lambda m: f"{m.group(1)}{MASK}", text)


_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactionFilter(logging.Filter):
    """A handler filter that rewrites each record in place with its secrets masked; it never drops a record.

    The message is formatted with its args first (then ``args`` is emptied), the exception becomes redacted
    ``exc_text`` (``exc_info`` is dropped so no formatter re-renders the raw traceback), and string extras are masked.
    """

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record (nor leak its args unmasked)
            message = f"{record.msg!s} (unformattable args: {record.args!r})"
        record.msg = redact(message, self.registry)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.registry)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.registry)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, redact(value, self.registry))
        return True
