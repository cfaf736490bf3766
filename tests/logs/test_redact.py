"""The redaction: registered values in every spelling, token-shaped values, and nothing else touched."""

from __future__ import annotations

import base64
import json
import logging
import sys
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.logs import MASK, RedactionFilter, SecretRegistry, redact

API_KEY = "k3y+With/Slash=AndMore"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0cmFkZXIiLCJleHAiOjE3NTI4NzY0MDB9."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"login with {API_KEY} failed", f"login with {MASK} failed"),
        (f"body=apiKey%3D{quote(API_KEY, safe='')}", f"body=apiKey%3D{MASK}"),
        (json.dumps({"userName": "u", "apiKey": API_KEY}), f'{{"userName": "u", "apiKey": "{MASK}"}}'),
        (f"token {JWT} expires soon", f"token {MASK} expires soon"),
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {MASK}"),
        ("authorization: bearer opaque-token-123", f"authorization: bearer {MASK}"),
        (
            "wss://rtc.topstepx.com/hubs/user?access_token=abc.def-ghi&x=1",
            f"wss://rtc.topstepx.com/hubs/user?access_token={MASK}&x=1",
        ),
        ('{"token":"opaque-session-value","success":true}', f'{{"token":"{MASK}","success":true}}'),
        ("password=hunter22 user=me", f"password={MASK} user=me"),
        # Three long base64url parts, not starting with eyJ, still look like a JWT.
        ("x " + "A" * 20 + "." + "b" * 20 + "." + "c" * 20, "x " + MASK),
    ],
)
def test_redact_masks(registry: SecretRegistry, text: str, expected: str) -> None:
    registry.register(API_KEY)
    assert redact(text, registry) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 123 on CON.F.US.MNQ.U25 filled at 20000.25",
        "engine.gateway.ratelimit: pausing the general window for 1.500 s",
        "token revision 3 restored from storage (expires 2025-07-18T21:00:01+00:00)",
        "tokenRefresh: true",
        "rtc.topstepx.com/hubs/user connected",
        "api.timeout: got -5; expected a number greater than 0",
    ],
)
def test_ordinary_lines_are_left_alone(registry: SecretRegistry, text: str) -> None:
    assert redact(text, registry) == text


def test_redaction_is_idempotent_and_never_doubles_the_mask(registry: SecretRegistry) -> None:
    registry.register(API_KEY)
    once = redact(f"token={JWT} apiKey: {API_KEY} Bearer {JWT}", registry)
    assert redact(once, registry) == once
    assert "]]" not in once and MASK in once


def test_bytes_secrets_are_masked_in_their_base64_and_hex_spellings(registry: SecretRegistry) -> None:
    key = bytes(range(32))
    registry.register(key)
    for spelling in (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("="), key.hex()):
        assert spelling not in redact(f"key is {spelling}!", registry)


def test_too_short_values_are_not_registered(registry: SecretRegistry) -> None:
    registry.register("abc")
    registry.register("")
    registry.register(None)
    assert len(registry) == 0
    assert redact("abc abc", registry) == "abc abc"


TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=."
token_text = st.text(alphabet=TOKEN_CHARS, min_size=6, max_size=60)


@given(secret=token_text, before=st.text(max_size=40), after=st.text(max_size=40))
def test_a_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    registry = SecretRegistry()
    registry.register(secret)
    for shape in (secret, quote(secret, safe=""), json.dumps(secret)):
        assert secret.strip() not in redact(before + shape + after, registry)


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    record = logging.LogRecord("engine.test", logging.WARNING, __file__, 1, msg, args or None, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_filter_masks_message_and_args(registry: SecretRegistry) -> None:
    registry.register(API_KEY)
    record = _record("login %s with key %s and %d retries", "trader", API_KEY, 3)
    assert RedactionFilter(registry).filter(record) is True
    assert record.getMessage() == f"login trader with key {MASK} and 3 retries"
    mapping = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%(k)s", ({"k": API_KEY},), None)
    RedactionFilter(registry).filter(mapping)
    assert mapping.getMessage() == f"key={MASK}"


def test_filter_masks_a_bad_format_without_losing_the_record(registry: SecretRegistry) -> None:
    registry.register(API_KEY)
    record = _record("two %s %s", API_KEY)  # one arg short
    RedactionFilter(registry).filter(record)
    assert API_KEY not in record.getMessage() and "unformattable" in record.getMessage()


def test_filter_masks_the_exception_traceback_and_extras(registry: SecretRegistry) -> None:
    registry.register(API_KEY)
    try:
        raise RuntimeError(f"server said: Bearer {JWT} / key {API_KEY}")
    except RuntimeError:
        record = _record("request failed", exc=True, body={"apiKey": API_KEY}, url=f"wss://h/u?access_token={JWT}")
        record.stack_info = f"Stack (most recent call last):\n  login({API_KEY!r})"
    RedactionFilter(registry).filter(record)
    assert record.exc_info is None and record.exc_text is not None
    assert "RuntimeError: server said: Bearer [REDACTED] / key [REDACTED]" in record.exc_text
    assert "Traceback (most recent call last)" in record.exc_text
    assert record.stack_info is not None and API_KEY not in record.stack_info
    assert record.url == f"wss://h/u?access_token={MASK}"  # type: ignore[attr-defined]
    for text in (record.getMessage(), record.exc_text, record.stack_info):
        assert API_KEY not in text and JWT not in text
