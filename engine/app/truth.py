"""Comparing the engine's mirrored state with a Gateway's truth, and counting duplicate orders.

Why here: the ``run --simulate`` summary, the system tests and the component tests all ask the same two questions
("does the mirror equal the Gateway?", "did any intent become two orders?") of plain Gateway-shaped dicts (the
mirror's :meth:`~engine.state.mirror.StateMirror.snapshot`, the simulator's ``/_sim/state``, a ``--state-out``
file). Both sides are read back through the protocol models and written out again, so the comparison is about
values, not about how a timestamp or a float happened to be spelled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.protocol.enums import OrderStatus
from engine.protocol.models import OrderModel, PositionModel, TradingAccountModel
from engine.protocol.records import WireRecord

GatewayState = Mapping[str, Sequence[Mapping[str, Any]]]


def _canonical(model: type[WireRecord], rows: Iterable[Mapping[str, Any]], key: tuple[str, ...]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for row in rows:
        wire = model.model_validate(row).wire()
        out[tuple(wire.get(k) for k in key)] = wire
    return out


def comparable(state: GatewayState, account_ids: Iterable[int] | None = None) -> dict[str, dict[Any, Any]]:
    """``accounts``, open ``positions`` and working ``orders`` of ``state``, canonical and keyed by id (only the
    given accounts when ``account_ids`` is set)."""
    ids = set(account_ids) if account_ids is not None else None

    def mine(row: Mapping[str, Any], field: str) -> bool:
        return ids is None or row.get(field) in ids

    accounts = _canonical(TradingAccountModel, (a for a in state.get("accounts", []) if mine(a, "id")), ("id",))
    positions = _canonical(PositionModel, (p for p in state.get("positions", [])
                                           if mine(p, "accountId") and p.get("size", 0) != 0),
                           ("accountId", "contractId"))
    orders = _canonical(OrderModel, (o for o in state.get("orders", []) if mine(o, "accountId")
                                     and OrderStatus(o.get("status", 0)).is_working), ("id",))
    return {"accounts": accounts, "positions": positions, "orders": orders}


def state_differences(mirror: GatewayState, truth: GatewayState,
                      account_ids: Iterable[int] | None = None) -> list[str]:
    """Human-readable differences between two Gateway-shaped states (empty: equal). ``account_ids`` limits the
    comparison to the accounts the engine watches."""
    ids = list(account_ids) if account_ids is not None else None
    left, right = comparable(mirror, ids), comparable(truth, ids)
    problems: list[str] = []
    for section in ("accounts", "positions", "orders"):
        a, b = left[section], right[section]
        for key in sorted(set(a) | set(b), key=repr):
            if key not in a:
                problems.append(f"{section} {key}: missing in the mirror")
            elif key not in b:
                problems.append(f"{section} {key}: in the mirror only")
            elif a[key] != b[key]:
                fields = sorted(f for f in set(a[key]) | set(b[key]) if a[key].get(f) != b[key].get(f))
                detail = ", ".join(f"{f}: {a[key].get(f)!r} != {b[key].get(f)!r}" for f in fields)
                problems.append(f"{section} {key}: {detail}")
    return problems


def duplicate_orders(orders: Iterable[Mapping[str, Any]]) -> int:
    """Orders beyond the first per ``(accountId, customTag)``: each one is an intent executed twice."""
    tags = Counter((o.get("accountId"), o.get("customTag")) for o in orders if o.get("customTag"))
    return sum(n - 1 for n in tags.values() if n > 1)
