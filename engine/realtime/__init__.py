"""The realtime side: SignalR hub connections on trio-websocket and their connection managers.

- :mod:`engine.realtime.hub`: one socket speaking the SignalR JSON protocol (handshake, invoke, keep-alive).
- :mod:`engine.realtime.manager`: one manager per hub, the driver of the connection machine (backoff, tokens,
  subscriptions, health, the reconciler on every reconnect); its events reach the injected sink channel as
  :data:`~engine.realtime.events.HubEvents` batches (one websocket frame's events per item, in order).
- :mod:`engine.realtime.transport`: how a socket is opened (real sockets, or an injected connector in tests).
- :mod:`engine.realtime.gcpolicy`: the collector setting a process running the event path uses.
"""

from engine.realtime.auth import TokenManagerProvider
from engine.realtime.backoff import ReconnectBackoff
from engine.realtime.errors import (
    HandshakeFailed,
    HubClosed,
    HubConnectionLost,
    HubError,
    HubGaveUp,
    HubInvocationError,
    HubNotConnected,
    InvokeTimeout,
)
from engine.realtime.events import CoalescingDelivery, HubEvent, HubEvents, OrderedDelivery
from engine.realtime.gcpolicy import tune_gc_for_event_path
from engine.realtime.health import HubHealth
from engine.realtime.hub import Disconnect, DisconnectKind, HubConnection, HubTimings, InvokeOutcome
from engine.realtime.manager import (
    HubManager,
    Reconciler,
    ReconnectContext,
    hub_from_settings,
    market_hub,
    user_hub,
)
from engine.realtime.subscriptions import Subscription, market_subscriptions, user_subscriptions
from engine.realtime.tokens import TokenProvider
from engine.realtime.transport import Connector, WebSocketLike, hub_url, redact, socket_connector

__all__ = [
    "CoalescingDelivery",
    "Connector",
    "Disconnect",
    "DisconnectKind",
    "HandshakeFailed",
    "HubClosed",
    "HubConnection",
    "HubConnectionLost",
    "HubError",
    "HubEvent",
    "HubEvents",
    "HubGaveUp",
    "HubHealth",
    "HubInvocationError",
    "HubManager",
    "HubNotConnected",
    "HubTimings",
    "InvokeOutcome",
    "InvokeTimeout",
    "OrderedDelivery",
    "Reconciler",
    "ReconnectBackoff",
    "ReconnectContext",
    "Subscription",
    "TokenManagerProvider",
    "TokenProvider",
    "WebSocketLike",
    "hub_from_settings",
    "hub_url",
    "market_hub",
    "market_subscriptions",
    "redact",
    "socket_connector",
    "tune_gc_for_event_path",
    "user_hub",
    "user_subscriptions",
]
