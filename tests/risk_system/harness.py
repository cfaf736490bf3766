"""Helpers of the risk system tests: the whole Engine against the in-process simulator (tests/app's harness) with
risk rules switched on, another REST client trading the account, and checks against the simulator's own state and
the store's enforcement log. Virtual time throughout.

The simulator's epoch (:data:`engine.gateway.testing.SIM_EPOCH`) is Wed 2026-11-25 15:00 UTC = 09:00 in Chicago,
the rules' time zone; :data:`DAILY_RESET` puts the next trading day one hour later, so a lockout's end is near.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from engine.gateway.testing import SimHarness
from engine.protocol.enums import OrderSide, OrderStatus, OrderType
from engine.protocol.models import BracketModel, PlaceOrderRequest
from engine.store import open_store
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from tests.app.harness import ACCOUNT, ES, engine_settings

DAILY_RESET = "10:00"
"""Chicago time: one hour after the simulator's epoch."""


def risk_settings(config: SimConfig, database: Path, **rules: Any) -> Any:
    """Engine settings with the given ``riskRules`` (snake_case) on top of the app tests' settings."""
    risk: dict[str, Any] = {"time_zone": "America/Chicago", "daily_reset": DAILY_RESET, **rules}
    return engine_settings(config, database, risk_rules=risk)


Rows = list[dict[str, Any]]


def account_state(gateway: SimulatedGateway, account: int = ACCOUNT) -> tuple[Rows, Rows]:
    """The simulator's truth for one account: (open positions, working orders incl. Suspended bracket children)."""
    snap = gateway.snapshot()
    positions = [p for p in snap["positions"] if p["accountId"] == account and p["size"] != 0]
    orders = [o for o in snap["orders"] if o["accountId"] == account and OrderStatus(o["status"]).is_working]
    return positions, orders


def is_flat(gateway: SimulatedGateway, account: int = ACCOUNT) -> bool:
    positions, orders = account_state(gateway, account)
    return not positions and not orders


async def until(predicate: Callable[[], bool], timeout_s: float = 30.0, step_s: float = 0.25) -> None:
    """Wait (virtual time) until ``predicate()`` holds; fail after ``timeout_s``."""
    with trio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the simulator's state has no event to wait on
            await trio.sleep(step_s)


async def market(sim: SimHarness, tag: str, *, size: int = 1, side: OrderSide = OrderSide.BID,
                 account: int = ACCOUNT, contract: str = ES) -> int:
    """A market order by "another front end" (the harness's REST client, not the engine)."""
    outcome = await sim.client.place_order(PlaceOrderRequest(
        account_id=account, contract_id=contract, type=int(OrderType.MARKET), side=int(side), size=size,
        custom_tag=tag))
    assert outcome.order_id is not None, outcome
    return outcome.order_id


async def bracketed_limit(sim: SimHarness, tag: str, *, price: float = 6000.0, account: int = ACCOUNT) -> int:
    """A resting limit buy with a stop-loss and a take-profit bracket: the children wait Suspended."""
    outcome = await sim.client.place_order(PlaceOrderRequest(
        account_id=account, contract_id=ES, type=int(OrderType.LIMIT), side=int(OrderSide.BID), size=1,
        limit_price=price, custom_tag=tag, stop_loss_bracket=BracketModel(ticks=-40, type=OrderType.STOP),
        take_profit_bracket=BracketModel(ticks=40, type=OrderType.LIMIT)))
    assert outcome.order_id is not None, outcome
    return outcome.order_id


async def enforcement_log(database: Path) -> list[dict[str, Any]]:
    """The store's enforcement log (read after the engine stopped)."""
    async with open_store(f"sqlite:///{database}", threads=False) as store:
        return await store.history("enforcement")
