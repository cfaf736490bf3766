"""kill -9 at a random instant leaves a consistent store, and the restart lists the intents to verify first."""

from __future__ import annotations

import itertools
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import UNRESOLVED_STATUSES, OrderIntent, open_store
from tests.store import crash_writer

REPO = Path(__file__).resolve().parents[2]


def _start_and_kill(url: str, rng: random.Random) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", url],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=30) or proc.stdout.readline().strip() != "ready":
                proc.kill()
                pytest.fail(f"crash writer did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(rng.uniform(0.05, 0.6))  # real time on purpose: a real process killed at a random instant
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.system
async def test_kill_9_mid_stream_leaves_a_consistent_store(db_url: str) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    _start_and_kill(db_url, random.Random(seed))
    context = f"(seed {seed})"

    if db_url.startswith("sqlite"):
        raw = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        finally:
            raw.close()

    async with open_store(db_url) as store:  # reopening runs the migrations check on the crashed database
        with store.engine.connect() as conn:
            intents = {r.intent_id: r for r in conn.execute(sa.text("SELECT * FROM order_intents"))}
            chains: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for r in conn.execute(sa.text("SELECT order_ref, from_state, to_state FROM order_transitions ORDER BY id")):
                chains[r.order_ref].append((r.from_state, r.to_state))
        unresolved = await store.unresolved_intents()
        # the store is usable again after the crash
        await store.record_intent(OrderIntent("after-crash", 1, "C", 0, 1, 1, "after-crash", crash_writer.BASE))

    assert len(intents) >= 1, context
    for intent_id, row in intents.items():
        n = int(intent_id.removeprefix("crash-"))
        expected = asdict(crash_writer.intent_of(n))
        for column in ("account_id", "contract_id", "side", "size", "order_type", "custom_tag", "limit_price"):
            assert getattr(row, column) == expected[column], f"{intent_id}.{column} {context}"
        chain = chains[intent_id]
        # the intent and its first transition were committed together; every later update with its transition
        assert chain and chain[0] == ("new", "submitted"), f"{intent_id}: {chain} {context}"
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), f"{intent_id}: {chain} {context}"
        assert row.status == chain[-1][1], f"{intent_id} status {row.status} vs {chain} {context}"
        assert [to for _, to in chain] == crash_writer.path_of(n)[: len(chain)], f"{intent_id} {context}"
    assert set(chains) <= set(intents), context
    expected_unresolved = sorted(i for i, r in intents.items() if r.status in UNRESOLVED_STATUSES)
    assert sorted(i.intent_id for i in unresolved) == expected_unresolved, context
    if len(intents) >= 4:  # crash-3 never leaves 'submitted': there is always something to verify
        assert "crash-3" in expected_unresolved, context
