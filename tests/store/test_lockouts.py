"""Risk lockouts in the store: durable, one row per account (a newer one replaces the older), and read back only
while still in force (``until > now``), on SQLite and on PostgreSQL. Also: a database written before the lockouts
table existed gains it on open, keeping what it held."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import AccountLockout, open_store
from engine.store.schema import SCHEMA_REVISIONS
from tests.store.helpers import T0, database_at_revision


def lockout(account: int, *, until_h: float, rule: str = "dailyLossLimit", since_h: float = 0.0) -> AccountLockout:
    return AccountLockout(account_id=account, rule=rule, since=T0 + timedelta(hours=since_h),
                          until=T0 + timedelta(hours=until_h), reason=f"{rule} breached",
                          at=T0 + timedelta(hours=since_h))


async def test_active_lockouts_are_those_still_in_force(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.save_lockout(lockout(1001, until_h=3))
        await store.save_lockout(lockout(2002, until_h=1, rule="maxContracts"))
        now = T0 + timedelta(hours=1)  # 2002's lockout ends exactly now: no longer in force
        active = await store.active_lockouts(now)
        assert active == [lockout(1001, until_h=3)]
        assert await store.active_lockouts(T0 + timedelta(minutes=59)) == [
            lockout(1001, until_h=3), lockout(2002, until_h=1, rule="maxContracts")]
        assert await store.active_lockouts(T0, account_ids=[2002]) == [lockout(2002, until_h=1, rule="maxContracts")]
        assert await store.active_lockouts(T0 + timedelta(hours=3)) == []


async def test_a_newer_lockout_replaces_the_accounts_previous_one(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.save_lockout(lockout(1001, until_h=1))
        newer = lockout(1001, until_h=26, since_h=2, rule="maxTradesPerDay")
        await store.save_lockout(newer)
        assert await store.active_lockouts(T0 + timedelta(hours=2)) == [newer]
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM risk_lockouts")).scalar() == 1


async def test_a_lockout_survives_reopening_the_store(sqlite_url: str) -> None:
    async with open_store(sqlite_url) as store:
        await store.save_lockout(lockout(1001, until_h=5))
    async with open_store(sqlite_url) as store:
        assert await store.active_lockouts(T0) == [lockout(1001, until_h=5)]


async def test_active_lockouts_refuses_a_naive_now(sqlite_url: str) -> None:
    async with open_store(sqlite_url) as store:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.active_lockouts(T0.replace(tzinfo=None))


async def test_a_database_at_the_first_revision_gains_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"

    def probe(conn: sa.Connection) -> None:
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('probe', 'kept')"))
        assert not sa.inspect(conn).has_table("risk_lockouts")

    database_at_revision(url, "v2_0001", probe)  # what an engine of the first revision left behind
    async with open_store(url, threads=False) as store:
        await store.save_lockout(lockout(1001, until_h=2))
        assert await store.active_lockouts(T0) == [lockout(1001, until_h=2)]
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISIONS[2]
            assert conn.execute(sa.text("SELECT value FROM store_meta WHERE key = 'probe'")).scalar() == "kept"
