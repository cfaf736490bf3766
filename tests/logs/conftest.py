"""Logging tests change process-wide state (the root logger); this fixture puts it back after each test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from engine.logs import COMPONENT_LOGGERS, SecretRegistry


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name in COMPONENT_LOGGERS.values():
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def registry() -> SecretRegistry:
    return SecretRegistry()
