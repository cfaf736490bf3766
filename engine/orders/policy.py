"""The order manager's knobs, read once from ``orderManagement`` (and ``api.timeout``).

What each switch does when OFF (also in the README):

- ``verification.enabled: false``: an ambiguous outcome is not investigated. The intent stays ``ambiguous`` in the
  store (so ``recover()`` lists it again at the next start), the caller gets ``unknown`` and the intent is handed to
  the reconciler. Nothing is ever re-sent. ``recover()`` reports unresolved intents without querying.
- ``idempotency.enabled: false``: no ``customTag`` is sent and caller keys are ignored. The store still records the
  intent (under a local ``untagged:`` key) before sending. An ambiguous place is verified by fingerprint (account,
  contract, side, size, type, prices, created inside the window, not claimed by another intent) and is NEVER re-sent
  when absent (without a tag the Gateway could not refuse a duplicate): the result is ``absent``.
- ``partialFills.trackingEnabled: false``: fills still update each order machine, but no completion deadline is
  watched, so nothing is handed to the reconciler for slowness.
- ``idempotency.cacheTTL``: seconds a caller key (and a finished order's machine, for late stream events) stays in
  memory. A key repeated within the TTL returns the first intent's result; after it, the store still knows the tag,
  so a repeat returns the stored outcome instead of placing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import EngineSettings


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    verification_enabled: bool = True
    verification_timeout_s: float = 5.0
    """Deadline of one verification search (stream cache + REST)."""
    verification_max_retries: int = 3
    """Searches after the first one; also bounds re-sends of a proven-absent intent."""
    tracking_enabled: bool = True
    complete_timeout_s: float = 60.0
    idempotency_enabled: bool = True
    cache_ttl_s: float = 3600.0
    mutation_deadline_s: float = 100.0
    """Own deadline of one in-flight mutation (shielded from outside cancellation); past it the outcome is ambiguous."""
    absence_grace_s: float = 1.0
    """A search miss proves absence only once this long has passed since the last send ended."""
    search_margin_s: float = 300.0
    """Widen search windows by this much before the intent (clock skew between us and the Gateway)."""
    tag_prefix: str = "tx-"

    def __post_init__(self) -> None:
        for name in ("verification_timeout_s", "complete_timeout_s", "cache_ttl_s", "mutation_deadline_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"order policy {name} must be > 0, got {getattr(self, name)}")
        if self.verification_max_retries < 0:
            raise ValueError(f"verification_max_retries must be >= 0, got {self.verification_max_retries}")
        if self.absence_grace_s < 0 or self.search_margin_s < 0:
            raise ValueError("absence_grace_s and search_margin_s must be >= 0")

    @classmethod
    def from_settings(cls, settings: EngineSettings, **overrides: object) -> OrderPolicy:
        om = settings.order_management
        timeout_s = om.verification.timeout_s
        api_timeout = settings.api.timeout_s
        attempts = settings.error_handling.retries.max_attempts
        values: dict[str, object] = {
            "verification_enabled": om.verification.enabled,
            "verification_timeout_s": timeout_s,
            "verification_max_retries": int(om.verification.max_retries),
            "tracking_enabled": om.partial_fills.tracking_enabled,
            "complete_timeout_s": om.partial_fills.complete_timeout_s,
            "idempotency_enabled": om.idempotency.enabled,
            "cache_ttl_s": float(om.idempotency.cache_ttl),
            # the client may re-send a request that provably never executed (refused connection, 429): allow for it
            "mutation_deadline_s": api_timeout * max(1, attempts) + 10.0,
            "absence_grace_s": min(1.0, timeout_s),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
