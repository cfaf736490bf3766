"""The enforcement-latency benchmark end to end with a handful of breaches, and its simulator-side probe.

No timing is asserted (the figure belongs to ``python -m engine bench enforcement``): only that every breach was
enforced by exactly one close of the breached account and that the figures are consistent."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import orjson
import pytest
import trio

from engine.bench import enforcement
from engine.bench._enforce_support import CLOSE_PATH, Message, Probe, Scope


@pytest.mark.system
def test_every_breach_is_closed_once_and_the_figures_are_consistent() -> None:
    result = enforcement.run(count=6, warmup=2, gap_ms=5.0)
    json.dumps(result)
    assert result["breaches"] == 6 and result["missed"] == 0, result
    assert result["stray_closes"] == 0, result
    assert result["engine_breaches_seen"] == 8
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert isinstance(result["passed"], bool)
    assert all(isinstance(note, str) for note in result["notes"])


async def test_the_probe_stamps_the_breaching_frame_and_the_matching_close() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        calls.append(str(scope["type"]))
        if scope["type"] == "http":
            await receive()
        else:
            for frame in frames:
                await send({"type": "websocket.send", "text": frame})

    def record(target: str, account: int, size: int) -> str:
        data = {"accountId": account, "contractId": "CON.F.US.MES.Z26", "size": size}
        return orjson.dumps({"type": 1, "target": target, "arguments": [{"action": 1, "data": data}]}).decode() + "\x1e"

    frames = [record("GatewayUserOrder", 7001, 2), record("GatewayUserPosition", 7002, 2),
              record("GatewayUserTrade", 7001, 2) + record("GatewayUserPosition", 7001, 2)]
    probe = Probe(app)
    probe.arm(7001)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def nothing() -> Message:
        raise AssertionError("the probe reads nothing of a websocket")

    await probe({"type": "websocket"}, nothing, send)
    assert len(sent) == 3 and probe.written_at is not None  # stamped on the third frame only (its account, a size)

    async def body_of(account: int) -> Message:
        await trio.lowlevel.checkpoint()
        return {"type": "http.request", "body": orjson.dumps({"accountId": account, "contractId": "x"})}

    await probe({"type": "http", "path": CLOSE_PATH}, lambda: body_of(7002), send)
    assert probe.closed_at is None and probe.stray_closes == 1  # another account's close does not count
    await probe({"type": "http", "path": CLOSE_PATH}, lambda: body_of(7001), send)
    assert probe.closed.is_set() and probe.closed_at is not None and probe.closed_at >= probe.written_at
