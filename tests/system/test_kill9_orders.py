"""Exactly-once orders across a real ``kill -9``: the strongest form of the crash proof.

Real processes over loopback: ``python -m engine simulate`` is the Gateway; ``python -m engine order place`` runs
one intent through the OrderManager with a SQLite file and is SIGKILLed at a random instant of a chosen stage of the
send (the intent on disk, the simulator's answer held back, lost, or just given); then ``python -m engine run`` is
started on the same database file, and its start-up recovery must leave every intended order at the simulator
EXACTLY once (``GET /_sim/state``), no intent unresolved in the database, and the database intact.

The other crash proofs each fake half of this: tests/store/test_crash.py kills a writer process for real but sends
nothing; tests/orders/test_crash_recovery.py sends for real but "crashes" by cancelling a nursery under a MockClock.
Here nothing is simulated in the engine: the test only watches the database file (the intent committed) and the
simulator's truth (the Gateway acted) to choose when to kill. Faults are aimed at one endpoint
(``params.path``), so the log-in and everything else around the send go through untouched.

Each stage is one case (4-11 s on a loaded 2-core machine: two engine start-ups, the kill window and the recovery);
the instant within a stage is drawn from a fresh seed, printed in every failure message.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import state_differences
from engine.store import UNRESOLVED_STATUSES
from tests.system.procs import SIM_KEY, SIM_USER, Proc, config_file, poll, simulator_process

pytestmark = pytest.mark.system

ACCOUNT, ES = 1001, "CON.F.US.EP.Z26"
PLACE, QUERY = "/api/Order/place", "/api/Order/v2/query"
CREDENTIALS = {"TOPSTEPX_USERNAME": SIM_USER, "TOPSTEPX_API_KEY": SIM_KEY}


@dataclass(frozen=True)
class Stage:
    """Where in the send the engine dies: the faults armed (each aimed at one endpoint) before it starts, what the
    test waits for before drawing the instant, and the window (seconds after that) the instant is drawn from."""

    name: str
    faults: tuple[dict[str, Any], ...]
    kill_within_s: tuple[float, float]
    after_gateway_acted: bool = False
    """Wait until the simulator holds the order (not only until the intent is on disk) before the window opens."""
    gateway_orders_at_kill: int | None = None
    """How many orders the simulator must hold with the intent's tag at the instant of the kill (None: either)."""
    killed_unresolved: bool = True
    """The database must list the intent unresolved after the kill (the crash swallowed its outcome)."""
    may_end_first: bool = False
    """The placer may finish (outcome accepted and stored) before the kill lands: the stage races the answer."""


STAGES = [
    # Every attempt is refused with a 503 without executing (the engine verifies, proves absence, re-sends with the
    # same tag, for several seconds): the intent is on disk, the order exists nowhere. Recovery must re-send it.
    Stage("never-acted", ({"kind": "http_5xx", "count": None, "params": {"status": [503], "path": PLACE}},),
          (0.0, 1.5), gateway_orders_at_kill=0),
    # The simulator sleeps 2.5 s before executing the place: the engine dies while its request is in flight, and the
    # Gateway acts AFTER the crash. Recovery must find the order (or, if it searches first, re-send with the same
    # tag, which the Gateway then refuses to place twice).
    Stage("in-flight", ({"kind": "delay", "params": {"seconds": 2.5, "path": PLACE}},), (0.0, 1.5),
          gateway_orders_at_kill=0),
    # The Gateway acted and the answer was lost; the engine's verification search is held for 3 s: it dies
    # not knowing. Recovery must adopt the existing order, never place a second one.
    Stage("response-lost", ({"kind": "lose_response", "params": {"path": PLACE}},
                            {"kind": "delay", "params": {"seconds": 3.0, "path": QUERY}}),
          (0.0, 1.5), after_gateway_acted=True, gateway_orders_at_kill=1),
    # No fault: killed the moment the simulator holds the order, i.e. while the answer travels back or before the
    # store recorded it. A race by nature: the store may record the answer first (nothing left to recover), or, on
    # a loaded machine, the placer may even finish before the kill lands.
    Stage("answered", (), (0.0, 0.002), after_gateway_acted=True, gateway_orders_at_kill=1, killed_unresolved=False,
          may_end_first=True),
]


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with simulator_process() as base:
        yield base


class Truth:
    """The simulator's side: its control endpoints (faults, authoritative state)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)

    def arm(self, fault: dict[str, Any]) -> None:
        answer = self.http.post("/_sim/faults", json=fault)
        assert answer.status_code == 200, answer.text

    def disarm_all(self) -> None:
        self.arm({"disarm": True})

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get("/_sim/state").json()
        return state

    def orders_tagged(self, tag: str) -> list[dict[str, Any]]:
        return [o for o in self.state()["orders"] if o.get("customTag") == tag]


def intent_rows(db: Path) -> list[sqlite3.Row]:
    """The order_intents rows, read-only ([] while the engine has not created the database yet)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return []
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM order_intents").fetchall()
    except sqlite3.OperationalError:  # no file or no table yet
        return []
    finally:
        conn.close()


def check_database(db: Path, context: str) -> None:
    """SQLite's integrity and foreign-key checks (after WAL recovery), and whole transition chains."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], context
        rows = conn.execute("SELECT order_ref, from_state, to_state FROM order_transitions ORDER BY id").fetchall()
    finally:
        conn.close()
    chains: dict[str, list[tuple[str, str]]] = {}
    for ref, before, after in rows:
        chains.setdefault(ref, []).append((before, after))
    for ref, chain in chains.items():  # whole rows only: each transition continues the previous one, or a new
        # lifecycle of the same intent (a re-send, a recovery) starts from "created"
        assert chain[0][0] == "created", f"{ref}: {chain} {context}"
        assert all(b[0] in (a[1], "created") for a, b in itertools.pairwise(chain)), f"{ref}: {chain} {context}"


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_sigkill_during_a_send_then_restart_leaves_each_order_exactly_once(
        stage: Stage, simulator: str, tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    truth = Truth(simulator)
    config = config_file(tmp_path, simulator)
    db = tmp_path / "engine.db"
    key = f"kill9-{stage.name}-{uuid.uuid4().hex[:8]}"
    context = f"(stage {stage.name}, seed {seed})"

    # 1. one intent through the OrderManager, killed at a random instant of the stage
    truth.disarm_all()
    for fault in stage.faults:
        truth.arm(fault)
    placer = Proc("order", "place", "--config", str(config), "--account", str(ACCOUNT), "--contract", ES,
                  "--side", "buy", "--size", "1", "--type", "limit", "--price", "1000", "--key", key, env=CREDENTIALS)
    try:
        row = poll(lambda: next((r for r in intent_rows(db) if r["custom_tag"].endswith(key)), None),
                   f"the intent on disk {context}")
        tag = row["custom_tag"]
        if stage.after_gateway_acted:
            poll(lambda: truth.orders_tagged(tag) or None, f"the order at the simulator {context}", every_s=0.0)
        delay_s = rng.uniform(*stage.kill_within_s)
        time.sleep(delay_s)  # real time on purpose: a real process killed at a random instant
        status = placer.kill()
        at_kill = len(truth.orders_tagged(tag))
        placer_log = placer.finish(10)
    finally:
        placer.stop()
    truth.disarm_all()
    rows = intent_rows(db)
    context += f" killed {delay_s * 1000:.0f} ms into the window, exit {status}, stored {[r['status'] for r in rows]}"

    if status != -signal.SIGKILL and stage.may_end_first:
        assert status == 0 and placer.lines[-1].startswith("place: accepted"), (context, placer.lines)
    else:
        assert status == -signal.SIGKILL, f"the placer ended first {context}: {placer.lines} {placer_log[-2000:]}"
    check_database(db, context)
    assert [r["custom_tag"] for r in rows] == [tag], context
    if stage.gateway_orders_at_kill is not None:
        assert at_kill == stage.gateway_orders_at_kill, context
    if stage.killed_unresolved:
        assert rows[0]["status"] in UNRESOLVED_STATUSES, context

    # 2. restart the engine on the same database file: recovery runs before anything else
    state_out = tmp_path / "state.json"
    engine = Proc("run", "--config", str(config), "--duration", "0.2", "--state-out", str(state_out), env=CREDENTIALS)
    try:
        stderr = engine.finish(45)
    finally:
        engine.stop()
    assert engine.popen.returncode == 0, (context, engine.lines, stderr[-3000:])
    recovering = [i for i, line in enumerate(engine.lines) if "recovering 1 unresolved order intent(s)" in line]
    done = [i for i, line in enumerate(engine.lines) if line.endswith("order recovery done")]
    ready = [i for i, line in enumerate(engine.lines) if "ready: watching account(s)" in line]
    assert ready, (context, engine.lines)
    if rows[0]["status"] in UNRESOLVED_STATUSES:  # recovered first, before the engine watches or acts
        assert recovering and done and recovering[0] < done[0] < ready[0], (context, engine.lines)
    else:
        assert not recovering, (context, engine.lines)

    # 3. the simulator's truth: the order exists exactly once, and it is the one the database names
    orders = truth.orders_tagged(tag)
    assert len(orders) == 1, (context, orders)
    final = intent_rows(db)
    assert [(r["custom_tag"], r["gateway_order_id"]) for r in final] == [(tag, orders[0]["id"])], context
    assert [r for r in final if r["status"] in UNRESOLVED_STATUSES] == [], context
    assert final[0]["status"] == "working", context
    check_database(db, context)
    state = json.loads(state_out.read_text())
    accounts = [a["id"] for a in state["accounts"]]
    assert state_differences(state, truth.state(), accounts) == [], context
