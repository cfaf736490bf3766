"""Alembic environment: always online, on the connection :mod:`engine.store.migrate` passes in.

``render_as_batch=True`` lets future ALTERs work on SQLite (which rebuilds a table instead of altering it). No
logging configuration here: the engine owns logging.
"""

from __future__ import annotations

from alembic import context

from engine.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI, which this project does not use
    raise RuntimeError("engine.store migrations run through engine.store.migrate, which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
