"""The whole Engine against the in-process simulator in virtual time: start-up sequence, initial sync, a hub drop
and its reconciliation, enforcement through the order manager, shutdown writing the final state, and the mirrored
state equal to the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.app import duplicate_orders, state_differences
from engine.protocol.enums import OrderSide, OrderType
from engine.store import open_store
from machines.connection import ConnectionState
from simulator.gateway import SimulatedGateway
from tests.app.harness import ACCOUNT, engine_settings, place, quiet_config, running_engine, settle


def truth(gateway: SimulatedGateway) -> dict[str, list[dict[str, object]]]:
    snap = gateway.snapshot()
    return {k: snap[k] for k in ("accounts", "positions", "orders")}


async def test_startup_sequence_initial_sync_and_state_equal_to_truth(autojump_clock: trio.abc.Clock,
                                                                      tmp_path: Path) -> None:
    placed: list[int] = []

    async def before(sim: object) -> None:
        placed.append(await place(sim, "resting-before-start"))  # type: ignore[arg-type]
        placed.append(await place(sim, "market-before-start", order_type=OrderType.MARKET, price=None, size=2))

    async with running_engine(tmp_path, before=before) as run:
        engine, gateway = run.engine, run.sim.gateway
        # the seed's start-up order, each step reported
        steps = ["logging in", "logged in", "connecting the user hub", "initial sync done", "ready"]
        positions = [next(i for i, line in enumerate(run.lines) if line.startswith(s)) for s in steps]
        assert positions == sorted(positions), run.lines
        assert engine.ready and engine.user_hub is not None and engine.market_hub is not None
        assert engine.user_hub.state is ConnectionState.CONNECTED
        assert engine.market_hub.state is ConnectionState.CONNECTED
        assert set(engine.account_ids) == {a["id"] for a in gateway.snapshot()["accounts"]
                                           if a["canTrade"] or a["isVisible"]} & set(engine.account_ids)
        assert ACCOUNT in engine.account_ids
        # the initial sync brought what existed before the engine started
        assert engine.mirror is not None and engine.mirror.order(placed[0]) is not None
        assert [p.contract_id for p in engine.mirror.positions(ACCOUNT)] == ["CON.F.US.EP.Z26"]
        # the market hub follows the contracts held or worked
        assert engine.market_hub.market_contracts == {"CON.F.US.EP.Z26"}
        # live: an order from elsewhere arrives over the stream
        placed.append(await place(run.sim, "while-running", price=5990.0))
        await settle()
        assert state_differences(engine.snapshot(), truth(gateway), engine.account_ids) == []
    # after the graceful stop the final state was kept and equals the truth
    assert engine.final_state is not None
    assert state_differences(engine.final_state, truth(gateway), engine.account_ids) == []
    assert duplicate_orders(gateway.snapshot()["orders"]) == 0
    assert run.lines[-1] == "stopped"


async def test_a_hub_drop_is_reconciled_and_journalled(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    async with running_engine(tmp_path) as run:
        engine, gateway = run.engine, run.sim.gateway
        assert engine.user_hub is not None and engine.mirror is not None
        gateway.faults.arm("ws_drop", params={"hub": "user"})
        await engine.user_hub.wait_state(ConnectionState.RECONNECTING)
        missed = await place(run.sim, "placed-while-down")
        assert engine.mirror.order(missed) is None
        with trio.fail_after(60):
            await engine.user_hub.wait_connected(min_generation=2)
        await settle(5)
        report = next(r for r in engine.reports if r.reason == "reconnect")
        assert report.complete
        assert [f.details.get("orderId") for f in report.findings if f.kind == "missed_order_created"] == [missed]
        assert engine.mirror.order(missed) is not None
        assert engine.findings_total >= 1 and engine.reconnects() == 1
        assert any("user hub: connected -> reconnecting" in line for line in run.lines), run.lines
        assert state_differences(engine.snapshot(), truth(gateway), engine.account_ids) == []
    db = tmp_path / "engine.db"
    async with open_store(f"sqlite:///{db}", threads=False) as store:
        findings = await store.history("reconcile")
        assert [r["kind"] for r in findings] == ["missed_order_created"]
        components = await store.history("connection")
        hub_rows = [(r["component"], r["to_state"]) for r in components if r["component"] == "hub:user"]
        assert ("hub:user", "reconnecting") in hub_rows and hub_rows[-1] == ("hub:user", "closed")
        assert any(r["component"] == "token" for r in components)
        saved = (await store.load_state()).as_gateway_dict()
    assert state_differences(saved, truth(gateway), engine.account_ids) == []


async def test_a_breach_is_enforced_through_the_order_manager(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    settings = engine_settings(config, tmp_path / "engine.db",
                               risk_rules={"max_contracts": {"enabled": True, "total": 2}})
    async with running_engine(tmp_path, config, settings=settings) as run:
        engine, gateway = run.engine, run.sim.gateway
        resting = await place(run.sim, "resting")
        await place(run.sim, "oversized", order_type=OrderType.MARKET, price=None, size=3, side=OrderSide.BID)
        await settle(10)
        assert engine.enforcer is not None and engine.enforcer.breaches >= 1
        assert engine.enforcer.actions_sent >= 2
        assert engine.mirror is not None
        assert engine.mirror.positions(ACCOUNT) == [] and engine.mirror.working_orders(ACCOUNT) == []
        snap = gateway.snapshot()
        assert [p for p in snap["positions"] if p["accountId"] == ACCOUNT] == []
        assert next(o for o in snap["orders"] if o["id"] == resting)["status"] == 3  # cancelled
        entries = list(engine.enforcer.entries)
        assert any(e.rule == "maxContracts" and e.outcome.startswith("enforced") for e in entries), entries
        assert state_differences(engine.snapshot(), truth(gateway), engine.account_ids) == []


async def test_a_hub_that_never_connects_gives_up_and_maps_to_exit_code_4(autojump_clock: trio.abc.Clock,
                                                                          tmp_path: Path) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from engine.app import Engine, first_leaf
    from engine.cli.run import EXIT_GAVE_UP, guarded
    from engine.gateway.testing import simulated_client
    from engine.realtime import HubGaveUp
    from simulator.app import build_app
    from simulator.transport import SimulatorTransport

    @asynccontextmanager
    async def refusing(url: str, *, max_message_size: int, connect_timeout_s: float) -> AsyncIterator[object]:
        raise OSError("connection refused")
        yield  # pragma: no cover

    config = quiet_config()
    settings = engine_settings(config, tmp_path / "engine.db", signalr={"reconnection": {"max_attempts": 3}})
    async with simulated_client(config) as sim:
        lines: list[str] = []
        engine = Engine(settings, transport=SimulatorTransport(build_app(sim.gateway)), connector=refusing,
                        wall_clock=sim.gateway.clock, store_threads=False, status=lines.append)
        with pytest.raises(BaseException) as caught:
            await engine.run()
        gave_up = first_leaf(caught.value, [HubGaveUp])
        assert isinstance(gave_up, HubGaveUp), caught.value
        assert not engine.ready and lines[-1] == "stopped"

        def fail() -> None:
            raise caught.value

        assert guarded(fail) == EXIT_GAVE_UP


async def test_the_dashboard_model_of_a_running_engine_renders(autojump_clock: trio.abc.Clock,
                                                               tmp_path: Path) -> None:
    from engine.app import dashboard_model
    from engine.ui import Mode, render_text, status_line

    async with running_engine(tmp_path) as run:
        await place(run.sim, "shown", order_type=OrderType.MARKET, price=None)
        await settle(3)
        model = dashboard_model(run.engine, mode=Mode.SIMULATED, mode_detail="test")
        assert {h.name: h.state for h in model.hubs} == {"user": "connected", "market": "connected"}
        row = next(a for a in model.accounts if a.id == ACCOUNT)
        assert [p.size for p in row.positions] == [1]
        text = render_text(model)
        assert "SIM-50K-1" in text and "connected" in text
        assert "user=connected" in status_line(model)
