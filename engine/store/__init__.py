"""The engine's durable store: order intents and their history, the journal, and the last mirrored state.

Why it looks like this
----------------------
* **Exactly-once orders need a durable intent.** An order intent (with its client ``customTag``) is committed
  before the request is sent; after a crash, :meth:`Store.unresolved_intents` lists every intent whose outcome is
  unknown (``submitted`` / ``ambiguous`` / ``verifying``) and the order manager verifies them before anything else.
* **The event path never waits on disk.** Every database call runs in a worker thread
  (``trio.to_thread.run_sync``) through ONE ``trio.CapacityLimiter(1)``, and every write goes through ONE writer
  task fed by a bounded memory channel. Journal records are fire-and-forget (:meth:`Store.journal`) and batched
  into transactions; records an action depends on are awaited (:meth:`Store.commit_now`, :meth:`Store.record_intent`,
  :meth:`Store.update_order`, :meth:`Store.save_state`). One queue means one order: an awaited commit also covers
  every journal record queued before it.
* **Crash-consistent.** Each batch is one transaction, so ``kill -9`` at any instant leaves whole rows only.
  SQLite runs in WAL mode with ``synchronous=NORMAL``; awaited commits switch to ``FULL`` (power-loss safe).
* **SQLite by default, PostgreSQL to share.** ``database.url`` picks the backend (``postgresql://`` uses
  psycopg 3). Several engine processes, each watching its own accounts, can share one PostgreSQL database: the
  mirrored state is one row per account and migrations run under an advisory lock.
* **A risk lockout survives a restart.** It is committed durably (:meth:`Store.save_lockout`, one row per account)
  and :meth:`Store.active_lockouts` hands back those still in force, which the engine restores before it evaluates.
* **Schema by Alembic, version recorded.** :meth:`Store.open` upgrades to the configured ``database.schemaVersion``
  (migrations ship inside the package, run programmatically) and refuses a database recording a newer version.

The API (all times are timezone-aware wall instants stamped by the caller, e.g. from ``WallClock.now()``)
-------------------------------------------------------------------------------------------------------------
Opening::

    async with open_store(url, 2, retention=RetentionPolicy(), wall_clock=clock) as store: ...
    async with open_store_from_settings(settings, wall_clock=clock) as store: ...
    # or by hand, inside the engine nursery (open is blocking: run it in a thread):
    store = await trio.to_thread.run_sync(Store.from_settings, settings)   # or Store.open(url, schema_version)
    await nursery.start(store.run)                                          # the single writer (start it first)
    await nursery.start(store.run_retention, clock)                         # periodic retention, hourly (Trio clock)
    ...; store.close()                                                      # after the writer task ended

    Store.open(url=DEFAULT_DATABASE_URL, schema_version=SCHEMA_VERSION, *, retention=None, migrate_schema=True,
               queue_size=10_000, batch_max=500, threads=True) -> Store
    ``migrate_schema=False`` (readers such as the CLI) never creates or upgrades: StoreNotFoundError if absent.
    ``commit_now`` and friends wait for the writer task: start ``store.run`` before awaiting them.

Writing::

    store.journal(*records) -> bool                  # fire-and-forget, never blocks (False = dropped, queue full)
    await store.commit_now(*records)                  # one durable transaction, raises on failure
    await store.record_intent(intent, *also)          # DuplicateIntentError on a reused intent id / customTag
    await store.update_order(OrderUpdate(...), *also)
    await store.save_lockout(AccountLockout(...))   # durable; replaces the account's previous lockout
    await store.save_state(StateSnapshot.from_gateway({"accounts": [...], "positions": [...], "orders": [...]}, at))
    await store.flush()                               # everything queued so far is committed

Records (:mod:`engine.store.records`): ``OrderIntent``, ``OrderUpdate``, ``OrderTransition``, ``Fill``,
``EnforcementEntry``, ``PnlSnapshot``, ``ReconcileFinding``, ``ComponentEvent``, ``StateSnapshot``, ``AccountLockout``.

Reading::

    await store.unresolved_intents() -> list[StoredIntent]
    await store.get_intent(intent_id) / get_intent(account_id=..., custom_tag=...) -> StoredIntent | None
    await store.load_state(account_ids=None) -> SavedState   # .as_gateway_dict() -> {"accounts","positions","orders"}
    await store.active_lockouts(now, account_ids=None) -> list[AccountLockout]   # until > now: still in force
    await store.history(kind, since=None, limit=None) -> list[dict]   # kinds: HISTORY_KINDS
    await store.apply_retention(now) -> dict[str, int]

Virtual-time tests: pass ``threads=False`` (to ``open_store`` / ``Store.open``) with an in-memory or temp-file
SQLite database. Under ``MockClock(autojump_threshold=0)`` a task waiting on a worker thread counts as blocked, so
the clock would jump to the next timer while the database works; inline calls take no Trio time.

Errors (:mod:`engine.store.errors`): ``StoreError`` and its subclasses ``StoreNotFoundError``,
``SchemaVersionError``, ``DuplicateIntentError``, ``StoreClosedError``.
"""

from __future__ import annotations

from engine.store.errors import (
    DuplicateIntentError,
    SchemaVersionError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
)
from engine.store.records import (
    UNRESOLVED_STATUSES,
    AccountLockout,
    ComponentEvent,
    EnforcementEntry,
    Fill,
    OrderIntent,
    OrderTransition,
    OrderUpdate,
    PnlSnapshot,
    ReconcileFinding,
    Record,
    SavedState,
    StateSnapshot,
    StoredIntent,
)
from engine.store.retention import RetentionPolicy, run_retention
from engine.store.schema import SCHEMA_VERSION
from engine.store.sqlops import HISTORY_KINDS
from engine.store.store import DEFAULT_DATABASE_URL, Store, open_store, open_store_from_settings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "HISTORY_KINDS",
    "SCHEMA_VERSION",
    "UNRESOLVED_STATUSES",
    "AccountLockout",
    "ComponentEvent",
    "DuplicateIntentError",
    "EnforcementEntry",
    "Fill",
    "OrderIntent",
    "OrderTransition",
    "OrderUpdate",
    "PnlSnapshot",
    "ReconcileFinding",
    "Record",
    "RetentionPolicy",
    "SavedState",
    "SchemaVersionError",
    "StateSnapshot",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreNotFoundError",
    "StoredIntent",
    "open_store",
    "open_store_from_settings",
    "run_retention",
]
