"""Errors of the realtime side, one type per thing a caller may want to handle differently.

Why separate types: a caller of :meth:`~engine.realtime.manager.HubManager.invoke` must tell "the server answered
with an error" (a business answer: do not retry blindly) from "no answer in time" and "the socket went away" (the
outcome is unknown), and the engine must tell "this hub is gone for good" (:class:`HubClosed`) from all of them.
No message here ever contains a token: URLs are redacted before they reach an error (see ``transport.redact``).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every realtime error."""


class HubNotConnected(HubError):
    """The hub has no live connection right now (connecting, reconnecting or closed)."""


class HubConnectionLost(HubError):
    """The socket this call used ended before the call finished (pending invokes fail with this)."""


class HandshakeFailed(HubError):
    """The SignalR handshake did not complete: refused by the server, timed out, or the socket closed first."""


class InvokeTimeout(HubError):
    """No Completion arrived within the call's deadline. The server may still have executed the call."""

    def __init__(self, target: str, timeout_s: float) -> None:
        super().__init__(f"invocation of '{target}' got no completion within {timeout_s:g} s")
        self.target = target
        self.timeout_s = timeout_s


class HubInvocationError(HubError):
    """The server answered the invocation with an error Completion."""

    def __init__(self, target: str, error: str) -> None:
        super().__init__(f"server refused '{target}': {error}")
        self.target = target
        self.error = error


class HubClosed(HubError):
    """The hub is closed for good: the manager gave up or the server closed without allowing a reconnect."""

    def __init__(self, hub: str, reason: str) -> None:
        super().__init__(f"{hub} hub closed: {reason}")
        self.hub = hub
        self.reason = reason


class HubGaveUp(HubClosed):
    """Every reconnect attempt (``signalr.reconnection.maxAttempts``) failed."""
