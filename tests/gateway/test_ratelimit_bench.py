"""The rate-limiter benchmark (against the simulator and a window model) and the ``bench`` dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from engine.__main__ import main
from engine.bench.ratelimit import SlidingWindowServer
from engine.gateway.ratelimit import Window, WindowLimit


def test_the_server_model_rejects_what_exceeds_its_sliding_window() -> None:
    server = SlidingWindowServer(general=WindowLimit(3, 10.0))
    statuses: list[tuple[float, int]] = []

    async def scenario() -> None:
        for at in (0, 1, 2, 3, 9.999, 10, 10.5, 11, 11.5):
            await trio.sleep_until(at)
            statuses.append((at, server.arrive("/api/Order/search")))

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    # 0, 1, 2 accepted; 3 and 9.999 rejected; 10 frees the slot of 0; 10.5 rejected; 11 frees the slot of 1, ...
    assert [s for _, s in statuses] == [200, 200, 200, 429, 429, 200, 429, 200, 429]
    assert server.rejected[Window.GENERAL] == 4


def test_bench_list_and_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list"]) == 0
    assert "ratelimit" in capsys.readouterr().out
    assert main(["bench", "no-such-bench"]) == 2
    assert "known: " in capsys.readouterr().err


def test_bench_ratelimit_meets_its_targets_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "ratelimit", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["ratelimit"]
    assert figures["http_429"] == 0
    assert figures["http_429_model_run"] == 0
    assert figures["utilisation"] >= 0.97
    assert figures["requests_completed"] <= figures["requests_allowed"]
    assert figures["priority_max_wait_s"] < 1.0
    assert figures["passed"] is True
