"""The store configured from ``EngineSettings`` (database.url, database.schemaVersion, database.retention.*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import RetentionPolicy, SchemaVersionError, Store, open_store_from_settings
from settings import load_settings


def test_from_settings_uses_url_version_and_retention(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "engine.db"
    settings = load_settings(
        None,
        env={},
        overrides={"database.url": f"sqlite:///{path}", "database.retention.orderHistory": 10,
                   "database.retention.dailyUnrealizedPnl": 3},
    )
    store = Store.from_settings(settings)
    store.close()
    assert path.exists()  # the directory is created for a new SQLite file
    assert store.retention == RetentionPolicy(daily_unrealized_pnl=3, enforcement_logs=30, order_history=10)


def test_from_settings_refuses_an_unknown_schema_version(tmp_path: Path) -> None:
    settings = load_settings(
        None, env={}, overrides={"database.url": f"sqlite:///{tmp_path / 'e.db'}", "database.schemaVersion": 7}
    )
    with pytest.raises(SchemaVersionError, match=r"database\.schemaVersion is 7"):
        Store.from_settings(settings)


async def test_open_store_from_settings_runs_the_writer(tmp_path: Path) -> None:
    settings = load_settings(None, env={}, overrides={"database.url": f"sqlite:///{tmp_path / 'e.db'}"})
    async with open_store_from_settings(settings) as store:
        await store.flush()
        assert await store.unresolved_intents() == []
