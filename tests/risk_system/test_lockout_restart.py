"""A lockout survives a restart: breach -> lockout -> stop the Engine -> a new Engine on the same database file and
the same simulated Gateway restores the lockout before it evaluates anything, enforces it exactly like a fresh one
(an order placed on the account by another front end is cancelled, a position it opens is closed), and lifts it at
the daily reset; an Engine started after that restores nothing. Virtual time throughout.

``maxContracts`` is the rule on purpose: once the account is flat nothing it measures is still breached, so only the
stored lockout can keep the restarted engine enforcing (a loss limit would re-breach on the day's realized P&L)."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.gateway.testing import simulated_client
from engine.protocol.enums import OrderStatus
from engine.store import open_store
from tests.app.harness import ACCOUNT, engine_on, place, quiet_config
from tests.risk_system.harness import account_state, enforcement_log, is_flat, market, risk_settings, until
from tests.risk_system.test_rules_enforced import order_status

QUIET = {"save_interval_s": 3600.0}


def restored_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "stays locked out" in line]


async def test_a_lockout_is_restored_after_a_restart_and_lifted_at_the_reset(autojump_clock: trio.abc.Clock,
                                                                               tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, max_contracts={"enabled": True, "total": 2})
    async with simulated_client(config) as sim:
        gateway = sim.gateway
        async with engine_on(sim, settings, **QUIET) as first:
            assert restored_lines(first.lines) == []
            await market(sim, "one-too-many", size=3)
            await until(lambda: is_flat(gateway))
            enforcer = first.engine.enforcer
            assert enforcer is not None
            lockout = enforcer.states[ACCOUNT].lockout
            assert lockout is not None and lockout.until > gateway.clock.now()
            await trio.sleep(1)  # the lockout's commit runs beside the enforcement
        async with open_store(f"sqlite:///{db}", threads=False) as store:
            stored = await store.active_lockouts(gateway.clock.now())
        assert [(s.account_id, s.rule, s.until) for s in stored] == [(ACCOUNT, "maxContracts", lockout.until)]

        async with engine_on(sim, settings, **QUIET) as second:
            # enforced exactly like a fresh lockout: the account is flat (no rule is breached), yet nothing it is
            # given stays
            resting = await place(sim, "after-restart-limit")
            await until(lambda: order_status(gateway, resting) is OrderStatus.CANCELLED, timeout_s=10)
            await market(sim, "after-restart-market", size=1)
            await until(lambda: is_flat(gateway), timeout_s=10)
            lines = second.lines
            assert restored_lines(lines) == [
                f"account {ACCOUNT} stays locked out until {lockout.until.isoformat()} "
                "(maxContracts; restored from the store)"]
            restored_at = lines.index(restored_lines(lines)[0])
            assert restored_at < next(i for i, line in enumerate(lines) if line.startswith("connecting the user hub"))
            enforcer = second.engine.enforcer
            assert enforcer is not None and enforcer.states[ACCOUNT].lockout == lockout
            # lifted at its time
            await trio.sleep((lockout.until - gateway.clock.now()).total_seconds() + 2)
            assert enforcer.states[ACCOUNT].lockout is None
            kept = await place(sim, "after-reset")
            await trio.sleep(10)
            assert [o["id"] for o in account_state(gateway)[1]] == [kept]

        async with engine_on(sim, settings, **QUIET) as third:  # the lockout has expired: nothing comes back
            assert restored_lines(third.lines) == []
            enforcer = third.engine.enforcer
            assert enforcer is not None and enforcer.states[ACCOUNT].lockout is None
            await trio.sleep(5)
            assert [o["id"] for o in account_state(gateway)[1]] == [kept]

    rows = [r for r in await enforcement_log(db) if r["account_id"] == ACCOUNT]
    restored = [r for r in rows if r["outcome"] == "restored"]
    assert len(restored) == 1 and restored[0]["measured"]["lockedOutBy"] == "maxContracts"
    assert any(r["rule"] == "lockout" and r["outcome"].startswith("enforced") for r in rows)
    assert any(r["rule"] == "maxContracts" and r["outcome"] == "unlocked" for r in rows)
