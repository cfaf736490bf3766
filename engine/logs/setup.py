"""``setup_logging(settings)``: one stderr handler on the root logger, the level, the format, the per-component
switches of ``logging.resilience`` and the secret redaction.

The switches name loggers, not modules' internals: each resilience component logs under the logger below (the
modules use ``logging.getLogger(__name__)``, so the name is the module path). A switch that is off lets only
ERROR and above through for that logger and its children: routine chatter (each retry, each reconnect attempt, each
rate-limit pause) goes away, a failure that needs a human does not.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from engine.logs.formatting import JsonFormatter, RedactingTextFormatter
from engine.logs.redact import SECRETS, RedactionFilter, SecretRegistry
from settings.models import EngineSettings, LoggingSettings

COMPONENT_LOGGERS: Mapping[str, str] = {
    "token_refresh": "engine.auth.manager",
    "reconnections": "engine.realtime",
    "error_retries": "engine.gateway.retry",
    "rate_limit": "engine.gateway.ratelimit",
    "circuit_breaker": "engine.gateway.breaker",
}
"""``logging.resilience`` switch (field name) -> the logger it governs (children included)."""

SWITCHED_OFF_LEVEL = logging.ERROR

_MARK = "_topstepx_engine_handler"


def setup_logging(
    settings: EngineSettings | LoggingSettings,
    *,
    stream: TextIO | None = None,
    registry: SecretRegistry = SECRETS,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Install (or replace, when called again) the engine's log handler on the root logger and return it.

    With the whole :class:`EngineSettings`, the secrets it knows of are registered for masking: the API key and the
    token-encryption key (read from the variable ``authentication.storage.keyEnv`` names, in ``env`` or
    ``os.environ``). Session tokens are registered by whoever obtains them (:func:`engine.logs.register_secret`);
    JWT-shaped values are masked even when nobody did.
    """
    log_settings = settings.logging if isinstance(settings, EngineSettings) else settings
    if isinstance(settings, EngineSettings):
        _register_configured_secrets(settings, registry, os.environ if env is None else env)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(RedactionFilter(registry))
    handler.setFormatter(JsonFormatter(registry) if log_settings.format == "json" else RedactingTextFormatter(registry))
    root.addHandler(handler)
    for other in root.handlers:  # handlers someone else installed get the redaction too
        if not any(isinstance(f, RedactionFilter) for f in other.filters):
            other.addFilter(RedactionFilter(registry))

    level = logging.getLevelName(log_settings.level)
    root.setLevel(level)
    switches = log_settings.resilience
    for switch, name in COMPONENT_LOGGERS.items():
        on = bool(getattr(switches, switch))
        logging.getLogger(name).setLevel(logging.NOTSET if on else max(SWITCHED_OFF_LEVEL, level))
    return handler


def _register_configured_secrets(settings: EngineSettings, registry: SecretRegistry, env: Mapping[str, str]) -> None:
    api_key = settings.credentials.api_key
    if api_key is not None:
        registry.register(api_key.get_secret_value())
    registry.register(env.get(settings.authentication.storage.key_env))
