"""The account state mirror and the reconciler.

- :mod:`engine.state.mirror`: :class:`StateMirror`, fed by hub events (``on_user_event`` / ``on_market_event``),
  read as a Gateway-shaped ``snapshot()``, watched contracts, last quotes, typed changes (:mod:`engine.state.changes`).
- :mod:`engine.state.reconciler`: :class:`Reconciler` (``await reconcile(reason)``, ``on_reconnected`` hook for the
  hub manager) over a :class:`~engine.state.source.SnapshotSource`; :class:`GatewayClientSource` adapts the client.
- :mod:`engine.state.dispatch`: ``feed_mirror`` (hub sink -> mirror) and ``follow_watched_contracts`` (mirror ->
  market hub subscriptions).
"""

from engine.state.changes import (
    AccountChanged,
    Change,
    FillInferred,
    OrderChanged,
    PositionChanged,
    QuoteChanged,
    TradeAdded,
    WatchedContractsChanged,
)
from engine.state.dispatch import feed_mirror, follow_watched_contracts
from engine.state.gateway_source import GatewayClientSource
from engine.state.mirror import MirrorCounters, StateMirror
from engine.state.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from engine.state.source import SnapshotSource, SnapshotUnavailable

__all__ = [
    "AccountChanged",
    "Change",
    "FillInferred",
    "GatewayClientSource",
    "MirrorCounters",
    "OrderChanged",
    "PositionChanged",
    "QuoteChanged",
    "ReconcileReport",
    "Reconciler",
    "ReconcilerConfig",
    "SnapshotSource",
    "SnapshotUnavailable",
    "StateMirror",
    "TradeAdded",
    "WatchedContractsChanged",
    "feed_mirror",
    "follow_watched_contracts",
]
