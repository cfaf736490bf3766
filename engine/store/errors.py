"""Errors the store raises: each names what is wrong and never carries credentials (URLs are shown masked)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store failure the engine is expected to handle or report."""


class StoreNotFoundError(StoreError):
    """The database does not exist yet (no file, or no store tables): nothing has been recorded."""


class SchemaVersionError(StoreError):
    """The schema version recorded in the database, or the one configured, cannot be used by this code."""


class DuplicateIntentError(StoreError):
    """An order intent reused an intent id, or a customTag already used on the same account."""


class StoreClosedError(StoreError):
    """A write was handed to a store whose writer is not running (not started yet, or shut down)."""
