"""Hub subscriptions as data: what the manager must (re)subscribe on every socket.

Why data: subscriptions live on the server's connection only and do not survive a reconnect (the official sample
subscribes again in ``onreconnected``). So the manager keeps the *desired* set, grouped by who owns it (the watched
accounts, the mirror's contract set), and each socket works out the difference between that set and what it has
applied: everything after a reconnect, only the change while connected.

Method names are the Gateway's (``docs/projectx-gateway.md`` section 7.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Subscription:
    """``subscribe(*args)`` on the hub; ``unsubscribe(*args)`` undoes it (None: nothing to call on removal)."""

    subscribe: str
    args: tuple[Any, ...] = ()
    unsubscribe: str | None = None

    def __str__(self) -> str:
        return f"{self.subscribe}({', '.join(repr(a) for a in self.args)})"


def _pair(name: str, *args: Any) -> Subscription:
    return Subscription(f"Subscribe{name}", args, f"Unsubscribe{name}")


def user_subscriptions(account_ids: Iterable[int]) -> list[Subscription]:
    """User hub: accounts, then orders, positions and trades of each watched account."""
    subs = [_pair("Accounts")]
    for account_id in sorted(set(account_ids)):
        subs += [_pair("Orders", account_id), _pair("Positions", account_id), _pair("Trades", account_id)]
    return subs


QUOTES: Final = "ContractQuotes"
TRADES: Final = "ContractTrades"
DEPTH: Final = "ContractMarketDepth"


def market_subscriptions(contract_ids: Iterable[str], feeds: Iterable[str] = (QUOTES,)) -> list[Subscription]:
    """Market hub: one subscription per contract and feed (quotes by default)."""
    feed_list = list(feeds)
    unknown = [f for f in feed_list if f not in (QUOTES, TRADES, DEPTH)]
    if unknown:
        raise ValueError(f"unknown market feed(s) {unknown}; known: {QUOTES}, {TRADES}, {DEPTH}")
    contracts = sorted(set(contract_ids))
    for contract_id in contracts:
        if not isinstance(contract_id, str) or not contract_id:
            raise ValueError(f"contract ids must be non-empty strings, got {contract_id!r}")
    return [_pair(feed, contract_id) for contract_id in contracts for feed in feed_list]
