"""The engine's logging: ``setup_logging(settings)``, per-component switches, JSON lines, secret redaction.

Modules log with ``logging.getLogger(__name__)``; nothing here is needed to log, only to configure. Whoever
obtains a secret at run time (a session token) calls :func:`register_secret` so it is masked in every later line.
"""

from engine.logs.formatting import JsonFormatter, RedactingTextFormatter
from engine.logs.redact import MASK, SECRETS, RedactionFilter, SecretRegistry, redact, register_secret
from engine.logs.setup import COMPONENT_LOGGERS, SWITCHED_OFF_LEVEL, setup_logging

__all__ = [
    "COMPONENT_LOGGERS",
    "MASK",
    "SECRETS",
    "SWITCHED_OFF_LEVEL",
    "JsonFormatter",
    "RedactingTextFormatter",
    "RedactionFilter",
    "SecretRegistry",
    "redact",
    "register_secret",
    "setup_logging",
]
