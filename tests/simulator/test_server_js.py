"""Interop proof: the official Microsoft SignalR JavaScript client (``@microsoft/signalr`` v10, under node) against the
simulator served on a real loopback socket.

The node script (``tests/js/hub_client.mjs``) logs in over REST, connects both hubs the way the ProjectX sample does
(``skipNegotiation`` + WebSockets + ``accessTokenFactory``), subscribes, places a market order over REST and waits
for GatewayUserOrder, GatewayUserTrade, GatewayUserPosition and GatewayQuote. When it prints ``STEP
await-reconnect`` this test arms a ``ws_close`` fault on the user hub; the client must reconnect by itself and
re-subscribe. Last, a client that negotiates first (no skipNegotiation) connects and invokes. The test asserts on
the script's final JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from simulator.app import build_app
from simulator.config import SimConfig
from simulator.faults import WS_CLOSE
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from simulator.server import serve

pytestmark = pytest.mark.system

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "hub_client.mjs"
NODE = shutil.which("node")
PACKAGE = JS_DIR / "node_modules" / "@microsoft" / "signalr" / "package.json"

ACCOUNT = 1001
USER, API_KEY = next(iter(SimConfig().users.items()))
CONTRACT = "CON.F.US.EP.Z26"


def _skip_reason() -> str | None:
    if NODE is None:
        return "node is not installed (needed to run the official @microsoft/signalr client)"
    if not PACKAGE.exists():
        return "@microsoft/signalr is not installed: run `npm install --prefix tests/js` (.ci/setup does it)"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
async def test_official_js_client_against_simulator(nursery: trio.Nursery) -> None:
    config = SimConfig(tick_interval_s=0.2)
    gateway = SimulatedGateway(config)
    app = build_app(gateway, HubOptions(fault_poll_s=0.05))
    url: str = await nursery.start(lambda task_status: serve(gateway, app=app, task_status=task_status))

    assert NODE is not None
    lines: list[str] = []
    stderr_chunks: list[bytes] = []

    async def drain(stream: Any, into: list[bytes]) -> None:
        while chunk := await stream.receive_some(65536):
            into.append(chunk)

    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [NODE, str(SCRIPT), url, USER, API_KEY, str(ACCOUNT), CONTRACT],
            cwd=str(JS_DIR), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            async with trio.open_nursery() as readers:
                readers.start_soon(drain, process.stderr, stderr_chunks)
                buffer = b""
                while chunk := await process.stdout.receive_some(65536):
                    *complete, buffer = (buffer + chunk).split(b"\n")
                    for raw in complete:
                        line = raw.decode()
                        lines.append(line)
                        if line == "STEP await-reconnect":
                            gateway.faults.arm(WS_CLOSE, params={"hub": "user"})
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    stderr = b"".join(stderr_chunks).decode(errors="replace")
    results = [line for line in lines if line.startswith("RESULT ")]
    assert results, f"no RESULT from node; stdout={lines!r} stderr={stderr!r}"
    result: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
    assert result["errors"] == [], result["errors"]
    assert process.returncode == 0

    events = result["events"]
    order_id = result["orderId"]
    orders = [args[0] for args in events["GatewayUserOrder"]]
    assert all(set(o) == {"action", "data"} for o in orders)  # user events are wrapped {action, data}
    assert any(o["data"]["id"] == order_id for o in orders)
    trade = events["GatewayUserTrade"][0][0]["data"]
    assert trade["orderId"] == order_id and trade["accountId"] == ACCOUNT
    position = events["GatewayUserPosition"][-1][0]["data"]
    assert position["contractId"] == CONTRACT and position["size"] == 1
    contract_id, quote = events["GatewayQuote"][0]  # market events are [contractId, payload]
    assert contract_id == CONTRACT and isinstance(quote, dict)
    assert result["unknownMethodError"].endswith("Unknown hub method 'SubscribeToOrders'")
    assert "Connection closed with an error." in result["reconnectingError"]
    assert result["stateAfterReconnect"] == "Connected"
    assert "user-resubscribed" in result["steps"]
    assert result["negotiatedConnectionId"]  # the negotiate path works with the official client too
    assert [r.kind for r in gateway.faults.log if r.kind == WS_CLOSE] == [WS_CLOSE]
