"""What callers ask the order manager for (intents) and what they get back (results).

Why separate values: the CLI, the risk layer and tests all speak to the manager in these terms, and a result must say
plainly whether the outcome is *known*. ``unknown`` is the one answer that is not a fact about the Gateway: the
manager could not prove whether the mutation happened (the intent stays unresolved in the store and is handed to the
reconciler); every other kind is final.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from engine.protocol.enums import OrderSide, OrderType

SUPPORTED_PLACE_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP})


@dataclass(frozen=True, slots=True)
class PlaceIntent:
    """Place one order. ``limit_price`` is required for LIMIT, ``stop_price`` for STOP; MARKET takes neither."""

    account_id: int
    contract_id: str
    side: OrderSide
    size: int
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("bad place intent: " + "; ".join(problems))

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.size < 1:
            found.append(f"size must be >= 1, got {self.size}")
        if not self.contract_id:
            found.append("contract id is empty")
        try:
            OrderSide(self.side)
        except ValueError:
            found.append(f"side must be 0 (buy) or 1 (sell), got {self.side!r}")
        try:
            kind = OrderType(self.order_type)
        except ValueError:
            found.append(f"unknown order type {self.order_type!r}")
            return found
        if kind not in SUPPORTED_PLACE_TYPES:
            found.append(f"order type {kind.name} is not supported here (market, limit, stop)")
        if kind is OrderType.LIMIT and self.limit_price is None:
            found.append("a limit order needs a limit price")
        if kind is OrderType.STOP and self.stop_price is None:
            found.append("a stop order needs a stop price")
        if kind is OrderType.MARKET and (self.limit_price is not None or self.stop_price is not None):
            found.append("a market order takes no price")
        for name in ("limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                found.append(f"{name.replace('_', ' ')} must be > 0, got {value}")
        return found


class ResultKind(StrEnum):
    ACCEPTED = "accepted"
    """The Gateway executed the mutation (for a place: the order exists; see ``state`` for where it is now)."""
    REJECTED = "rejected"
    """The Gateway definitively refused it (``code``/``message``), or it could not apply (order already final)."""
    DENIED = "denied"
    """Never sent (breaker open, rate-limit queue full, no token, store unavailable, bad input)."""
    ABSENT = "absent"
    """The outcome was ambiguous and verification proved nothing was executed (no resend was allowed)."""
    UNKNOWN = "unknown"
    """Could not be determined: the intent stays unresolved in the store and was handed to the reconciler."""


@dataclass(frozen=True, slots=True)
class IntentResult:
    """The final outcome of one intent, as printed by the CLI (``as_dict``)."""

    intent: str
    kind: ResultKind
    account_id: int
    intent_id: str | None = None
    custom_tag: str | None = None
    order_id: int | None = None
    state: str | None = None
    filled_qty: int | None = None
    avg_price: float | None = None
    code: int | None = None
    message: str | None = None
    reason: str | None = None
    attempts: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.kind is not ResultKind.UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return {k: v for k, v in data.items() if v is not None and v != {}}
