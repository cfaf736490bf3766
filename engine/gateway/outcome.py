"""The typed outcome of a mutation (Order/place, modify, cancel; Position/closeContract, partialCloseContract).

Why a value and not an exception: a mutation has four outcomes the order manager must tell apart, and only one of
them is a plain success. ``accepted`` (the Gateway executed it), ``rejected`` (a business rejection with the
endpoint's errorCode: never retried), ``ambiguous`` (the request may or may not have been executed: a lost
response, a timeout after sending, a 5xx, an ``Order pending``/``UnknownError`` code; it goes to order verification,
never to a blind resend) and ``denied`` (the engine never sent it: breaker open, rate-limit queue full, no token).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.gateway.errors import GatewayError


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class MutationOutcome:
    """What happened to one mutation. ``order_id`` is set by Order/place when the Gateway returned one (it may be
    non-null on a rejection too: a created-then-rejected order). ``code``/``code_name``/``message`` describe a
    rejection (or an ambiguous business code); ``reason`` explains an ambiguous or denied outcome in words;
    ``error`` is the typed error behind a non-accepted outcome."""

    kind: OutcomeKind
    endpoint: str
    order_id: int | None = None
    code: int | None = None
    code_name: str | None = None
    message: str | None = None
    reason: str | None = None
    error: GatewayError | None = None

    @property
    def accepted(self) -> bool:
        return self.kind is OutcomeKind.ACCEPTED

    @property
    def rejected(self) -> bool:
        return self.kind is OutcomeKind.REJECTED

    @property
    def ambiguous(self) -> bool:
        return self.kind is OutcomeKind.AMBIGUOUS

    @property
    def denied(self) -> bool:
        return self.kind is OutcomeKind.DENIED

    def __str__(self) -> str:
        parts = [f"{self.endpoint}: {self.kind.value}"]
        if self.order_id is not None:
            parts.append(f"orderId={self.order_id}")
        if self.code_name is not None:
            parts.append(self.code_name)
        if self.message:
            parts.append(repr(self.message))
        if self.reason:
            parts.append(self.reason)
        return " ".join(parts)


PlaceOrderOutcome = MutationOutcome
"""Order/place's outcome (``order_id`` set when accepted)."""

__all__ = ["MutationOutcome", "OutcomeKind", "PlaceOrderOutcome"]
