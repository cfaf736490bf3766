"""The dashboard's rules table shows what each rule measures now (worst over the watched accounts), next to its
limit: the day's P&L of the loss rule (the enforcer's last evaluation), open contracts, today's filled orders and
whether the session is open."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.app import dashboard_model
from engine.app.dashboard import measured
from engine.protocol.enums import OrderSide
from engine.ui import render_text
from tests.app.harness import ES, quiet_config, running_engine
from tests.risk_system.harness import account_state, market, risk_settings


async def test_rule_rows_carry_measured_values(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    settings = risk_settings(config, tmp_path / "engine.db",
                             daily_loss_limit={"enabled": True, "limit": 5000.0},
                             max_contracts={"enabled": True, "total": 10},
                             max_trades_per_day={"enabled": True, "limit": 20},
                             trading_session={"enabled": True, "start": "08:00", "end": "15:00"})
    async with running_engine(tmp_path, config, settings=settings, save_interval_s=3600.0) as run:
        engine, gateway = run.engine, run.sim.gateway
        assert measured(engine).contracts == 0 and measured(engine).trades == 0
        await market(run.sim, "buy-three", size=3)
        await market(run.sim, "sell-one", size=1, side=OrderSide.ASK)
        await trio.sleep(3)
        entry = account_state(gateway)[0][0]["averagePrice"]
        gateway.set_price(ES, entry - 10.0)  # 2 long x 40 ticks x 12.50 = -1000 unrealized
        await trio.sleep(3)
        now = measured(engine)
        assert now.contracts == 2 and now.trades == 2 and now.session == "open"
        assert now.daily_pnl is not None and -1100.0 < now.daily_pnl < -1000.0  # fees and the spread on top
        rows = {r.name: r for r in dashboard_model(engine).rules}
        assert rows["maxContracts"].measured == 2 and rows["maxContracts"].limit == 10
        assert rows["maxTradesPerDay"].measured == 2
        assert rows["dailyLossLimit"].measured == now.daily_pnl and rows["dailyLossLimit"].limit == -5000.0
        assert rows["tradingSession"].measured == "open"
        assert all(r.status.value == "ok" for r in rows.values())
        text = render_text(dashboard_model(engine))
        assert "open" in text and "08:00-15:00" in text
