"""The two log formats: a readable text line, or one JSON object per line (for log shippers).

Both mask secrets once more on the finished line (:func:`engine.logs.redact.redact`): the record filter already
masked the message, the args, the traceback and string extras, but a non-string extra (a dict, an object's repr)
is only turned into text here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.logs.redact import _STANDARD_ATTRIBUTES, SECRETS, SecretRegistry, redact

TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


class RedactingTextFormatter(logging.Formatter):
    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        super().__init__(TEXT_FORMAT)
        self.registry = registry

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.registry)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ["exception"], ["stack"], [extras...]}``, one object per line.

    ``time`` is the record's creation instant in UTC (ISO-8601, milliseconds). Extras that are not JSON values are
    written as their ``str``.
    """

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.registry = registry

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        line = orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return redact(line, self.registry)
