"""Alembic migrations of the store, shipped inside the package and run programmatically at start-up.

There is no ``alembic.ini``: :mod:`engine.store.migrate` builds the Alembic ``Config`` in code and hands over the
engine's own connection, so the same path works for a file, an in-memory SQLite database and PostgreSQL.
"""
