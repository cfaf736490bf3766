"""SIGTERM and SIGINT stop ``python -m engine run --simulate`` gracefully: exit code 0, the summary printed, and the
database consistent afterwards (integrity check, the final mirrored state saved and equal to ``--state-out``, no
order intent left unresolved, the hubs' journal ending in ``closed``). Real processes over loopback.

The signal goes out as soon as the run says the scripted trader is trading (its login and first order are then in
flight), read from stdout: no fixed pause guessing when that is, which a loaded machine can outlast. Reconciliations
are not spaced (``minInterval`` 0) so the final one does not wait out the seed's 5 s after the initial sync."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import pytest

from engine.app import state_differences
from engine.store import open_store
from tests.system.procs import Proc

pytestmark = pytest.mark.system


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_the_run_gracefully(signum: signal.Signals, tmp_path: Path) -> None:
    db, out = tmp_path / "engine.db", tmp_path / "final.json"
    proc = Proc("run", "--simulate", "--no-dashboard", "--seed", "2", "--state-out", str(out),
                "--set", f"database.url=sqlite:///{db}", "--set", "stateReconciliation.minInterval=0")
    try:
        proc.wait_for("ready: watching account(s)", timeout_s=60)  # ceilings only: a loaded machine is slow
        proc.wait_for("scripted trader trading", timeout_s=60)
        proc.popen.send_signal(signum)
        stderr = proc.finish(60)
    finally:
        proc.stop()
    text = "\n".join(proc.lines)
    assert proc.popen.returncode == 0, (text, stderr[-3000:])
    assert f"{signum.name}: stopping gracefully" in text
    assert "Summary" in text and "  Duplicate orders: 0" in proc.lines
    assert "  Final mirrored state equals the simulator's: yes" in proc.lines
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    final = json.loads(out.read_text())
    async with open_store(f"sqlite:///{db}", threads=False) as store:
        saved = (await store.load_state()).as_gateway_dict()
        assert await store.unresolved_intents() == []
        journal = await store.history("connection")
    ids = [a["id"] for a in final["accounts"]]
    assert ids and state_differences(saved, final, ids) == []
    last = {row["component"]: row["to_state"] for row in journal}
    assert last.get("hub:user") == "closed" and last.get("hub:market") == "closed"
