"""The single writer: total order under concurrent producers, durability of awaited commits, failure isolation,
back-pressure without blocking, and what happens at shutdown."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy as sa
import trio

from engine.store import ComponentEvent, DuplicateIntentError, Store, StoreClosedError, open_store
from engine.store.connect import build_engine, normalize_url
from tests.store.helpers import T0, intent


def event(producer: int, seq: int) -> ComponentEvent:
    return ComponentEvent(f"producer-{producer}", "a", "b", f"{producer}:{seq}", T0 + timedelta(milliseconds=seq))


async def test_concurrent_producers_commit_in_exactly_the_order_they_handed_over(db_url: str) -> None:
    handed_over: list[str] = []
    rng = random.Random(1234)
    delays = {(p, s): rng.random() for p in range(6) for s in range(40)}

    async with open_store(db_url, batch_max=17) as store:

        async def producer(p: int) -> None:
            for s in range(40):
                await trio.sleep(delays[(p, s)] / 100)
                record = event(p, s)
                if s % 10 == 9:
                    handed_over.append(record.cause)
                    await store.commit_now(record)  # awaited writes share the one queue
                else:
                    assert store.journal(record)
                    handed_over.append(record.cause)

        async with trio.open_nursery() as nursery:
            for p in range(6):
                nursery.start_soon(producer, p)
        await store.flush()
        rows = await store.history("connection")
        stats = store.stats
    by_id = sorted(rows, key=lambda r: r["id"])
    assert [r["cause"] for r in by_id] == handed_over
    assert len(handed_over) == 240 and stats.failed == 0 and stats.dropped == 0
    assert stats.batches < stats.committed  # journal records were batched


async def test_commit_now_is_on_disk_before_it_returns_seen_from_another_connection(db_url: str) -> None:
    other = build_engine(normalize_url(db_url))  # an independent engine: its own connections
    try:
        async with open_store(db_url) as store:
            for n in range(5):
                await store.record_intent(intent(n))
                with other.connect() as conn:
                    found = conn.execute(
                        sa.text("SELECT status FROM order_intents WHERE intent_id = :i"), {"i": f"intent-{n}"}
                    ).scalar()
                assert found == "submitted"
    finally:
        other.dispose()


async def test_commit_now_on_sqlite_survives_without_closing_the_store(sqlite_url: str) -> None:
    # The raw sqlite3 module, not SQLAlchemy: the committed row is in the file (WAL) for any reader.
    async with open_store(sqlite_url) as store:
        await store.record_intent(intent(1))
        raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        try:
            assert raw.execute("SELECT custom_tag FROM order_intents").fetchall() == [("tag-1",)]
        finally:
            raw.close()


async def test_a_bad_record_in_a_batch_fails_only_its_own_caller(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.record_intent(intent(1))
        outcomes: dict[str, str] = {}

        async def place(n: int, tag: str) -> None:
            try:
                await store.record_intent(intent(n, custom_tag=tag))
                outcomes[tag + str(n)] = "ok"
            except DuplicateIntentError:
                outcomes[tag + str(n)] = "duplicate"

        async with trio.open_nursery() as nursery:
            store.journal(event(0, 0))
            nursery.start_soon(place, 2, "tag-1")  # duplicate customTag on the same account
            nursery.start_soon(place, 3, "fresh")
            store.journal(event(0, 1))
        await store.flush()
        orders = await store.history("orders")
        events = await store.history("connection")
    assert outcomes == {"tag-12": "duplicate", "fresh3": "ok"}
    assert sorted(r["intent_id"] for r in orders) == ["intent-1", "intent-3"]
    assert [e["cause"] for e in events] == ["0:0", "0:1"]


async def test_a_full_queue_drops_journal_records_instead_of_blocking(sqlite_url: str) -> None:
    store = await trio.to_thread.run_sync(lambda: Store.open(sqlite_url, queue_size=3))
    try:
        accepted = [store.journal(event(0, s)) for s in range(5)]  # writer not started: nothing drains
        assert accepted == [True, True, True, False, False]
        assert store.stats.dropped == 2
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await store.flush()
            rows = await store.history("connection")
            nursery.cancel_scope.cancel()
        assert [r["cause"] for r in rows] == ["0:0", "0:1", "0:2"]
    finally:
        store.close()


async def test_shutdown_commits_what_was_queued_then_refuses_writes(sqlite_url: str) -> None:
    store = await trio.to_thread.run_sync(Store.open, sqlite_url)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            for s in range(50):
                store.journal(event(1, s))
            nursery.cancel_scope.cancel()  # cancelled with 50 records still queued
        with pytest.raises(StoreClosedError):
            await store.commit_now(event(1, 99))
        assert store.journal(event(1, 100)) is False
        reopened = await trio.to_thread.run_sync(Store.open, sqlite_url)
        async with trio.open_nursery() as nursery:
            await nursery.start(reopened.run)
            rows = await reopened.history("connection")
            nursery.cancel_scope.cancel()
        reopened.close()
    finally:
        store.close()
    assert [r["cause"] for r in rows] == [f"1:{s}" for s in range(50)]


async def test_writer_runs_only_once(sqlite_url: str) -> None:
    async with open_store(sqlite_url) as store:
        with pytest.raises(RuntimeError, match="runs once"):
            await store.run()


async def test_in_memory_sqlite_works_through_the_single_limiter() -> None:
    async with open_store("sqlite://") as store:
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(store.record_intent, intent(n))
        assert len(await store.history("orders")) == 20


async def test_awaited_commits_use_synchronous_full_and_journal_batches_normal(sqlite_url: str) -> None:
    seen: list[tuple[str, int]] = []

    def on_insert(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT"):
            level = conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0]  # type: ignore[union-attr]
            seen.append((statement.split()[2], level))

    async with open_store(sqlite_url) as store:
        sa.event.listen(store.engine, "before_cursor_execute", on_insert)
        store.journal(event(0, 0))
        await store.flush()
        await store.record_intent(intent(1))
    assert seen == [("component_events", 1), ("order_intents", 2)]  # 1 = NORMAL, 2 = FULL


def test_concurrent_first_opens_of_one_database_both_succeed(db_url: str) -> None:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def opener() -> None:
        barrier.wait()
        try:
            Store.open(db_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


async def test_a_failing_journal_record_is_logged_and_counted(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.store import OrderUpdate

    async with open_store(sqlite_url) as store:
        store.journal(OrderUpdate("ghost", T0, status="working"))  # no such intent
        store.journal(event(0, 0))
        await store.flush()
        rows = await store.history("connection")
        stats = store.stats
    assert [r["cause"] for r in rows] == ["0:0"]
    assert stats.failed == 1
    assert "journal record(s) OrderUpdate could not be written" in caplog.text and "'ghost'" in caplog.text
