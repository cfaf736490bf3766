"""``setup_logging``: level, text/JSON format, per-component switches, and no secret in any written line."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import traceback
from urllib.parse import quote

import pytest

from engine.logs import COMPONENT_LOGGERS, SecretRegistry, setup_logging
from settings import load_settings

API_KEY = "pX-4pi-k3y/with+odd=chars"
ENCRYPTION_KEY = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
SESSION_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3Nzc3IiwiZXhwIjoxNzUyODc2NDAwfQ."
    "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy"
)
OPAQUE_TOKEN = "opaque-session-token-0123456789"  # not JWT-shaped: only the registry can catch it


def _setup(fmt: str, registry: SecretRegistry, **switches: bool) -> io.StringIO:
    overrides: dict[str, object] = {"logging.format": fmt, "logging.level": "DEBUG"}
    overrides |= {f"logging.resilience.{k}": v for k, v in switches.items()}
    settings = load_settings(env={"TOPSTEPX_API_KEY": API_KEY, "TOPSTEPX_USERNAME": "trader"}, overrides=overrides)
    out = io.StringIO()
    setup_logging(settings, stream=out, registry=registry, env={"TOPSTEPX_TOKEN_KEY": ENCRYPTION_KEY})
    return out


def _log_secrets_every_way(registry: SecretRegistry) -> None:
    registry.register(OPAQUE_TOKEN)  # what the token manager does with each token it obtains
    auth = logging.getLogger("engine.auth.manager")
    hub = logging.getLogger("engine.realtime.hub")
    other = logging.getLogger("httpx")  # a library's logger: its lines go through the same handler
    auth.info("logged in with %s", API_KEY)
    auth.info("new token %s (opaque %s)", SESSION_TOKEN, OPAQUE_TOKEN)
    auth.warning("key from env: %(key)s", {"key": ENCRYPTION_KEY})
    auth.debug(f"f-string with the key {API_KEY} and token {SESSION_TOKEN}")
    hub.info("connecting to wss://rtc.topstepx.com/hubs/user?access_token=%s", SESSION_TOKEN)
    hub.info("connecting to %s", f"wss://rtc/hubs/market?access_token={quote(OPAQUE_TOKEN)}&v=1")
    other.info('HTTP Request: POST https://api/Auth/loginKey body={"userName":"t","apiKey":"%s"}', API_KEY)
    other.info("headers: {'Authorization': 'Bearer %s'}", OPAQUE_TOKEN)
    auth.info("extra fields", extra={"token": SESSION_TOKEN, "request": {"apiKey": API_KEY, "key": ENCRYPTION_KEY}})
    try:
        raise PermissionError(f"login refused for key {API_KEY} / token {OPAQUE_TOKEN}")
    except PermissionError:
        auth.exception("login failed")
    try:
        try:
            raise ValueError(SESSION_TOKEN)
        except ValueError as inner:
            raise RuntimeError(f"wrapped {ENCRYPTION_KEY}") from inner
    except RuntimeError:
        hub.error("chained", exc_info=True, stack_info=True)


SECRET_FORMS = [
    API_KEY,
    quote(API_KEY, safe=""),
    ENCRYPTION_KEY,
    SESSION_TOKEN,
    SESSION_TOKEN.split(".")[2],  # not even the signature
    OPAQUE_TOKEN,
]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_the_output(fmt: str, registry: SecretRegistry) -> None:
    out = _setup(fmt, registry)
    _log_secrets_every_way(registry)
    written = out.getvalue()
    assert written.count("\n") >= 11  # 11 records (tracebacks add lines in text format)
    leaked = [form for form in SECRET_FORMS if form in written]
    assert leaked == [], f"secrets in the log: {leaked}"
    assert "[REDACTED]" in written
    assert "login failed" in written and "PermissionError" in written  # the useful parts survive
    assert "The above exception was the direct cause" in written


def test_json_lines_are_objects_with_the_record_fields(registry: SecretRegistry) -> None:
    out = _setup("json", registry)
    log = logging.getLogger("engine.orders.manager")
    log.info("placed %d on %s", 2, "CON.F.US.MNQ.U25", extra={"intent": "abc-1", "details": {"n": 1}})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("boom with %s", API_KEY)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "engine.orders.manager"
    assert first["message"] == "placed 2 on CON.F.US.MNQ.U25"
    assert (first["intent"], first["details"]) == ("abc-1", {"n": 1})
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and second["message"] == "boom with [REDACTED]"
    assert "ZeroDivisionError: division by zero" in second["exception"]


def test_text_lines_carry_time_level_and_logger(registry: SecretRegistry) -> None:
    out = _setup("text", registry)
    logging.getLogger("engine.store").warning("queue full")
    [line] = out.getvalue().splitlines()
    assert line.endswith(" WARNING  engine.store: queue full")


def test_level_filters(registry: SecretRegistry) -> None:
    settings = load_settings(env={}, overrides={"logging.level": "WARNING"})
    out = io.StringIO()
    setup_logging(settings, stream=out, registry=registry, env={})
    logging.getLogger("engine.x").info("hidden")
    logging.getLogger("engine.x").warning("shown")
    assert out.getvalue().splitlines()[0].endswith("shown") and "hidden" not in out.getvalue()


@pytest.mark.parametrize(("switch", "logger"), [
    ("tokenRefresh", "engine.auth.manager"),
    ("reconnections", "engine.realtime.manager"),
    ("reconnections", "engine.realtime.hub"),
    ("errorRetries", "engine.gateway.retry"),
    ("rateLimit", "engine.gateway.ratelimit"),
    ("circuitBreaker", "engine.gateway.breaker"),
])
def test_a_switched_off_component_logs_only_errors(switch: str, logger: str, registry: SecretRegistry) -> None:
    out = _setup("text", registry, **{switch: False})
    log = logging.getLogger(logger)
    log.info("routine")
    log.warning("attempt failed")
    log.error("gave up")
    logging.getLogger("engine.store").info("others unaffected")
    lines = out.getvalue()
    assert "routine" not in lines and "attempt failed" not in lines
    assert "gave up" in lines and "others unaffected" in lines

    out = _setup("text", registry)  # switched back on by a new setup
    logging.getLogger(logger).info("routine again")
    assert "routine again" in out.getvalue()


def test_every_switched_logger_is_a_real_module_package() -> None:
    # If a module is renamed, its switch must follow: a switch naming nothing would silently do nothing.
    for name in COMPONENT_LOGGERS.values():
        assert importlib.util.find_spec(name) is not None, name


def test_setup_twice_keeps_one_handler(registry: SecretRegistry) -> None:
    first = _setup("text", registry)
    second = _setup("json", registry)
    logging.getLogger("engine.x").warning("once")
    assert first.getvalue() == "" and len(second.getvalue().splitlines()) == 1


def test_handlers_installed_by_others_get_the_redaction(registry: SecretRegistry) -> None:
    foreign = io.StringIO()
    handler = logging.StreamHandler(foreign)
    logging.getLogger().addHandler(handler)
    try:
        _setup("text", registry)
        logging.getLogger("engine.x").warning("key %s", API_KEY)
        assert API_KEY not in foreign.getvalue() and "[REDACTED]" in foreign.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)


def test_the_traceback_module_output_would_have_leaked() -> None:
    # Control for the tests above: the raw traceback does contain the secret, so the redaction is what removes it.
    try:
        raise RuntimeError(API_KEY)
    except RuntimeError:
        assert API_KEY in traceback.format_exc()
