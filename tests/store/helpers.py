"""Record factories shared by the store tests (fixed instants: the store stores what the caller stamps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.store import OrderIntent, OrderTransition

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def intent(n: int, *, account: int = 1001, at: datetime = T0, **changes: object) -> OrderIntent:
    fields: dict[str, object] = {
        "intent_id": f"intent-{n}",
        "account_id": account,
        "contract_id": "CON.F.US.MNQ.M25",
        "side": n % 2,
        "size": 1 + n % 3,
        "order_type": 1,
        "custom_tag": f"tag-{n}",
        "created_at": at,
        "limit_price": 21000.25 + n,
    }
    fields.update(changes)
    return OrderIntent(**fields)  # type: ignore[arg-type]


def transition(n: int, from_state: str, to_state: str, *, at: datetime = T0, cause: str = "test") -> OrderTransition:
    return OrderTransition(f"intent-{n}", from_state, to_state, cause, at, account_id=1001)


def days(n: float) -> timedelta:
    return timedelta(days=n)
