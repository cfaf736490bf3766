"""System tests: the real ``python -m engine run`` process against ``python -m engine simulate`` over loopback, with a
fault armed through ``POST /_sim/faults``; and ``run --simulate`` end to end. Short real-time runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.app import state_differences
from tests.system.procs import SIM_KEY, SIM_USER, Proc, config_file, simulator_process

pytestmark = pytest.mark.system

USER, KEY = SIM_USER, SIM_KEY
ES = "CON.F.US.EP.Z26"


@pytest.fixture
def simulator() -> Iterator[str]:
    with simulator_process() as base:
        yield base


class Trader:
    """Another front end trading the simulated accounts over REST."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)
        token = self.http.post("/api/Auth/loginKey", json={"userName": USER, "apiKey": KEY}).json()["token"]
        self.http.headers["authorization"] = f"Bearer {token}"

    def place(self, account: int, tag: str, *, order_type: int = 1, size: int = 1, price: float | None = 5000.0) -> int:
        body: dict[str, Any] = {"accountId": account, "contractId": ES, "type": order_type, "side": 0, "size": size,
                                "customTag": tag}
        if order_type == 1:
            body["limitPrice"] = price
        answer = self.http.post("/api/Order/place", json=body).json()
        assert answer["success"], answer
        return int(answer["orderId"])


def test_run_against_the_simulator_process_survives_a_ws_drop_and_ends_equal_to_the_truth(
        simulator: str, tmp_path: Path) -> None:
    trader = Trader(simulator)
    trader.place(1001, "resting-before")
    trader.place(1002, "market-before", order_type=2, size=2, price=None)
    out = tmp_path / "state.json"
    engine = Proc("run", "--config", str(config_file(tmp_path, simulator)), "--duration", "4", "--state-out", str(out),
                  env={"TOPSTEPX_USERNAME": USER, "TOPSTEPX_API_KEY": KEY})
    try:
        engine.wait_for("ready: watching account(s)")
        armed = trader.http.post("/_sim/faults", json={"kind": "ws_drop", "params": {"hub": "user"}})
        assert armed.status_code == 200, armed.text
        engine.wait_for("user hub: connected -> reconnecting")
        trader.place(1001, "placed-around-the-drop", price=4990.0)
        engine.wait_for("user hub reconnected")
        engine.wait_for("reconciliation done")
        stderr = engine.finish(30)
    finally:
        engine.stop()
    assert engine.popen.returncode == 0, (engine.lines, stderr)
    assert "stopped" in engine.lines[-2] or any(line.endswith("stopped") for line in engine.lines)
    state = json.loads(out.read_text())
    truth = trader.http.get("/_sim/state").json()
    ids = [a["id"] for a in state["accounts"]]
    assert {1001, 1002} <= set(ids)
    assert state_differences(state, truth, ids) == []
    assert any(o["customTag"] == "placed-around-the-drop" for o in state["orders"])
    assert [p["accountId"] for p in state["positions"]] == [1002]


def test_run_refuses_a_bad_api_key_with_exit_code_3(simulator: str, tmp_path: Path) -> None:
    engine = Proc("run", "--config", str(config_file(tmp_path, simulator)),
                  env={"TOPSTEPX_USERNAME": USER, "TOPSTEPX_API_KEY": "wrong-key"})
    try:
        stderr = engine.finish(30)
    finally:
        engine.stop()
    assert engine.popen.returncode == 3, (engine.lines, stderr)
    assert "wrong-key" not in stderr and "wrong-key" not in "\n".join(engine.lines)


def test_run_simulate_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "final.json"
    proc = Proc("run", "--simulate", "--duration", "5", "--no-dashboard", "--seed", "1", "--state-out", str(out))
    try:
        stderr = proc.finish(40)
    finally:
        proc.stop()
    text = "\n".join(proc.lines)
    assert proc.popen.returncode == 0, (text, stderr[-3000:])
    assert "Summary" in text
    assert "  Duplicate orders: 0" in proc.lines
    assert "  429s received: 0" in proc.lines
    assert "  Final mirrored state equals the simulator's: yes" in proc.lines
    assert "ready: watching account(s) 1001, 1002, 1003" in text
    assert set(json.loads(out.read_text())) == {"accounts", "positions", "orders"}
