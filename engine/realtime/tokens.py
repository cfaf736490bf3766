"""The token provider the hub managers need, as a small protocol (the token manager in ``engine.auth`` satisfies it).

Why a protocol and not the token manager itself: the realtime side needs exactly three things from authentication,
and naming only those keeps the hubs testable against the simulator's token service and independent of how tokens
are obtained, stored and refreshed:

- :meth:`TokenProvider.current_token` before every connect (a hub URL carries the token; it is fixed per socket);
- :meth:`TokenProvider.invalidate_and_relogin` after the server refused the token (HTTP 401/403 at the upgrade) or
  announced ``GatewayLogout``;
- :meth:`TokenProvider.token_updates`: an async iterable that yields once per new token (the value is not used: the
  manager asks :meth:`current_token` and compares), so a refreshed token leads to a planned reconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenProvider(Protocol):
    async def current_token(self) -> str:
        """A usable session token (may log in or refresh first)."""
        ...

    async def invalidate_and_relogin(self) -> None:
        """Forget the current token and obtain a new one (single-flight in the implementation)."""
        ...

    def token_updates(self) -> AsyncIterable[object]:
        """A fresh subscription to new-token announcements: yields once per new token, until cancelled."""
        ...
