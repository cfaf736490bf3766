"""The :class:`Store`: the typed face of the durable store that the rest of the engine calls.

It owns the SQLAlchemy engine, the single writer (:class:`~engine.store.writer.StoreWriter`) and the one
:class:`~engine.store.blocking.BlockingRunner` (a ``CapacityLimiter(1)``) through which every database call, read
or write, runs in a worker thread. Nothing here
blocks the Trio thread except :meth:`Store.open` and :meth:`Store.close`, which the async helper
:func:`open_store` runs in a thread too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from engine.store import migrate, sqlops
from engine.store.blocking import BlockingRunner
from engine.store.connect import build_engine, durable_commit, masked, normalize_url, sqlite_path
from engine.store.errors import StoreError, StoreNotFoundError
from engine.store.records import (
    UNRESOLVED_STATUSES,
    AccountLockout,
    OrderIntent,
    OrderUpdate,
    Record,
    SavedState,
    StateSnapshot,
    StoredIntent,
)
from engine.store.retention import DEFAULT_INTERVAL_SECONDS, RetentionPolicy, run_retention
from engine.store.schema import SCHEMA_VERSION
from engine.store.writer import StoreWriter, WriterStats

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger("engine.store")

#: Where the store lives when ``database.url`` is not set: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///topstepx-engine.db"

T = TypeVar("T")


class Store:
    """The engine's durable store. Build with :meth:`open` (or :func:`open_store`), run :meth:`run` in a nursery."""

    def __init__(
        self,
        engine: Engine,
        url: URL,
        *,
        retention: RetentionPolicy | None = None,
        queue_size: int = 10_000,
        batch_max: int = 500,
        threads: bool = True,
    ) -> None:
        self._engine = engine
        self.url = url
        self.retention = retention or RetentionPolicy()
        self._run_blocking = BlockingRunner(threads=threads)
        self._writer = StoreWriter(self._commit_sync, self._run_blocking, queue_size=queue_size, batch_max=batch_max)

    # ------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def open(
        cls,
        url: str | URL = DEFAULT_DATABASE_URL,
        schema_version: int = SCHEMA_VERSION,
        *,
        retention: RetentionPolicy | None = None,
        migrate_schema: bool = True,
        queue_size: int = 10_000,
        batch_max: int = 500,
        threads: bool = True,
    ) -> Store:
        """Connect, check the schema version and (unless ``migrate_schema=False``) upgrade it. Blocking.

        ``migrate_schema=False`` is for readers such as the CLI: a missing database raises
        :class:`StoreNotFoundError` instead of being created. ``threads=False`` runs database calls inline: only for
        virtual-time tests (see :mod:`engine.store.blocking`).
        """
        parsed = normalize_url(url)
        path = sqlite_path(parsed)
        if path is not None:
            if not migrate_schema and not path.exists():
                raise StoreNotFoundError(f"no database at {path} yet: the engine has not recorded anything there")
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = build_engine(parsed)
        try:
            if migrate_schema:
                migrate.upgrade(engine, schema_version)
            else:
                migrate.verify_existing(engine, schema_version)
        except OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise StoreError(f"cannot open the database at {masked(parsed)}: {reason}") from None
        except BaseException:
            engine.dispose()
            raise
        log.info("store open at %s (schema version %d)", masked(parsed), schema_version)
        return cls(
            engine, parsed, retention=retention, queue_size=queue_size, batch_max=batch_max, threads=threads
        )

    @classmethod
    def from_settings(cls, settings: EngineSettings, *, migrate_schema: bool = True) -> Store:
        """:meth:`open` with ``database.url``, ``database.schema_version`` and ``database.retention.*``."""
        url, version, retention = settings_values(settings)
        return cls.open(url, version, retention=retention, migrate_schema=migrate_schema)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The single writer task: ``await nursery.start(store.run)``. Cancel it to stop (queued records commit)."""
        await self._writer.run(task_status=task_status)

    def close(self) -> None:
        """Release the connections. Blocking; call after the writer task has ended."""
        self._engine.dispose()

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and tools; engine code goes through the methods)."""
        return self._engine

    # ---------------------------------------------------------------------------------------------- writes
    def journal(self, *records: Record) -> bool:
        """Fire-and-forget: queue records (committed together, in order). Never blocks; False if dropped."""
        return self._writer.journal(*records)

    async def commit_now(self, *records: Record) -> None:
        """Commit records in one durable transaction, after everything queued before them; raise if they fail."""
        await self._writer.commit(*records)

    async def record_intent(self, intent: OrderIntent, *also: Record, power_safe: bool = True) -> None:
        """Durably record an order intent (plus e.g. its first transition) BEFORE its request is sent.

        ``power_safe`` False commits without forcing ``synchronous=FULL``: the row survives the process being
        killed (the WAL is written before this returns), not a power loss, and the commit costs a fraction of a
        millisecond instead of an fsync (several ms on this machine's disk).

        Raises :class:`~engine.store.errors.DuplicateIntentError` if the intent id or the account's customTag was
        already used.
        """
        await self._writer.commit(intent, *also, durable=power_safe)

    async def update_order(self, update: OrderUpdate, *also: Record) -> None:
        """Durably change an intent's current row (status, gateway order id, filled qty, avg price)."""
        await self._writer.commit(update, *also)

    async def save_state(self, snapshot: StateSnapshot) -> None:
        """Durably replace the mirrored state of the accounts in ``snapshot`` (other accounts' rows untouched)."""
        await self._writer.commit(snapshot)

    async def save_lockout(self, lockout: AccountLockout) -> None:
        """Durably record the account's lockout (replacing its previous one): a restart must not lift it."""
        await self._writer.commit(lockout)

    async def flush(self) -> None:
        """Return once everything queued so far is committed (not forced to ``synchronous=FULL``)."""
        await self._writer.commit(durable=False)

    # ----------------------------------------------------------------------------------------------- reads
    async def load_state(self, account_ids: Iterable[int] | None = None) -> SavedState:
        """The last mirrored state (all accounts, or those given), Gateway field names."""
        ids = None if account_ids is None else list(account_ids)
        return await self._read(partial(sqlops.load_state, account_ids=ids))

    async def unresolved_intents(self, statuses: Iterable[str] = UNRESOLVED_STATUSES) -> list[StoredIntent]:
        """Intents whose outcome is unknown (submitted / ambiguous / verifying), oldest first."""
        return await self._read(partial(sqlops.unresolved_intents, statuses=frozenset(statuses)))

    async def get_intent(
        self, intent_id: str | None = None, *, account_id: int | None = None, custom_tag: str | None = None
    ) -> StoredIntent | None:
        """One intent by id, or by (account, customTag)."""
        return await self._read(
            partial(sqlops.get_intent, intent_id=intent_id, account_id=account_id, custom_tag=custom_tag)
        )

    async def active_lockouts(self, now: datetime, account_ids: Iterable[int] | None = None) -> list[AccountLockout]:
        """The lockouts still in force at wall instant ``now`` (``until > now``), of all accounts or those given."""
        ids = None if account_ids is None else list(account_ids)
        return await self._read(partial(sqlops.active_lockouts, now=now, account_ids=ids))

    async def history(
        self, kind: str, since: datetime | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Journal rows of ``kind`` (see ``HISTORY_KINDS``) at or after ``since``, oldest first."""
        return await self._read(partial(sqlops.history, kind=kind, since=since, limit=limit))

    # ------------------------------------------------------------------------------------------- retention
    async def apply_retention(self, now: datetime) -> dict[str, int]:
        """Delete what is older than each retention window at wall instant ``now``; rows deleted per table."""
        deleted = await self._run_blocking(self._retention_sync, now)
        if any(deleted.values()):
            log.info("store retention deleted %s", {k: v for k, v in deleted.items() if v})
        return deleted

    async def run_retention(
        self,
        clock: Any,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Periodic retention task: ``await nursery.start(store.run_retention, wall_clock)``."""
        await run_retention(self.apply_retention, clock, interval=interval, task_status=task_status)

    # -------------------------------------------------------------------------------------- worker threads
    async def _read(self, fn: Callable[..., T]) -> T:
        return await self._run_blocking(self._read_sync, fn)

    def _read_sync(self, fn: Callable[..., T]) -> T:
        with self._engine.connect() as conn:
            return fn(conn)

    def _commit_sync(self, records: Sequence[Record], durable: bool) -> None:
        with self._engine.connect() as conn, durable_commit(conn, durable), conn.begin():
            for record in records:
                sqlops.write(conn, record)

    def _retention_sync(self, now: datetime) -> dict[str, int]:
        with self._engine.connect() as conn, conn.begin():
            return sqlops.apply_retention(conn, self.retention, now)


def settings_values(settings: EngineSettings) -> tuple[str, int, RetentionPolicy]:
    """(url, schema_version, retention) from an ``EngineSettings`` (see the settings contract)."""
    database = settings.database
    retention = database.retention
    return (
        database.url or DEFAULT_DATABASE_URL,
        int(database.schema_version),
        RetentionPolicy(
            daily_unrealized_pnl=retention.daily_unrealized_pnl,
            enforcement_logs=retention.enforcement_logs,
            order_history=retention.order_history,
        ),
    )


@asynccontextmanager
async def open_store(
    url: str | URL = DEFAULT_DATABASE_URL,
    schema_version: int = SCHEMA_VERSION,
    *,
    retention: RetentionPolicy | None = None,
    wall_clock: Any = None,
    retention_interval: float = DEFAULT_INTERVAL_SECONDS,
    queue_size: int = 10_000,
    batch_max: int = 500,
    threads: bool = True,
) -> AsyncIterator[Store]:
    """Open the store in a thread, run its writer (and, given a ``wall_clock``, the retention task) while inside.

    On exit everything queued is committed, the tasks stop and the connections close. ``threads=False``: see
    :mod:`engine.store.blocking` (virtual-time tests only).
    """
    opener = partial(
        Store.open, url, schema_version, retention=retention, queue_size=queue_size, batch_max=batch_max,
        threads=threads,
    )
    run_blocking = BlockingRunner(threads=threads)
    store = await run_blocking(opener)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            if wall_clock is not None:
                await nursery.start(partial(store.run_retention, wall_clock, interval=retention_interval))
            yield store
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await run_blocking(store.close)


@asynccontextmanager
async def open_store_from_settings(settings: EngineSettings, *, wall_clock: Any = None) -> AsyncIterator[Store]:
    """:func:`open_store` configured from an ``EngineSettings``."""
    url, version, retention = settings_values(settings)
    async with open_store(url, version, retention=retention, wall_clock=wall_clock) as store:
        yield store
