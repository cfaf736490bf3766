"""The token manager (``engine.auth.manager.TokenManager``) seen through the hubs' small TokenProvider protocol.

Why an adapter and one per hub: the token manager speaks in *revisions* (every new token gets a higher number) and
renews single-flight when told which revision the server refused (:meth:`TokenManager.handle_unauthorized`). A hub
refused at the upgrade (401/403) or told ``GatewayLogout`` only knows "my token is bad", so this adapter remembers the
revision it handed to its hub and reports exactly that one. Two hubs refused with the same revision share one
renewal; a hub holding an already-replaced revision renews nothing and simply takes the newer token next attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.auth.manager import TokenManager


class TokenManagerProvider:
    """:class:`~engine.realtime.tokens.TokenProvider` over a :class:`TokenManager`; create one per hub."""

    def __init__(self, manager: TokenManager) -> None:
        self._manager = manager
        self._revision = 0

    @property
    def revision(self) -> int:
        """The revision of the token last handed to this hub (0 before the first)."""
        return self._revision

    async def current_token(self) -> str:
        token = await self._manager.current()
        self._revision = token.revision
        return token.token

    async def invalidate_and_relogin(self) -> None:
        await self._manager.handle_unauthorized(self._revision)

    async def token_updates(self) -> AsyncIterator[object]:
        with self._manager.subscribe() as updates:
            async for token in updates:
                yield token.revision
