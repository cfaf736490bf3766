"""Session tokens of the simulated Gateway: HS256 JWTs signed with the stdlib, expiring on the WallClock.

Real tokens are JWTs with an ``exp`` claim that clients decode to schedule refreshes, so the simulator issues real
ones. Several tokens may be valid at once (a new login does not invalidate older tokens); logout revokes only the
caller's token; the ``expire_tokens``/``revoke_tokens`` faults invalidate every token issued so far.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine.protocol.timebase import WallClock


class TokenState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"
    """Malformed, bad signature, or never issued by us."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    state: TokenState
    user: str | None = None
    jti: str | None = None
    exp: float | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenService:
    def __init__(self, clock: WallClock, secret: bytes, ttl_s: float) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._secret = secret
        self._revoked: set[str] = set()
        self._expired_upto = 0
        """Tokens with an issue sequence number up to this one count as expired (the expire_tokens fault)."""
        self._revoked_upto = 0
        self.issued = 0

    def issue(self, user: str) -> str:
        now = self.clock.timestamp()
        self.issued += 1
        claims: dict[str, Any] = {
            "sub": user,
            "jti": secrets.token_hex(8),
            "iat": now,
            "nbf": int(now),
            "exp": int(now + self.ttl_s) if self.ttl_s >= 60 else now + self.ttl_s,
            "seq": self.issued,
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def inspect(self, token: str) -> TokenInfo:
        parts = token.split(".")
        if len(parts) != 3:
            return TokenInfo(TokenState.INVALID)
        header, payload, signature = parts
        expected = _b64(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return TokenInfo(TokenState.INVALID)
        try:
            claims = json.loads(_unb64(payload))
            user, jti, exp, seq = str(claims["sub"]), str(claims["jti"]), float(claims["exp"]), int(claims["seq"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return TokenInfo(TokenState.INVALID)
        if jti in self._revoked or seq <= self._revoked_upto:
            return TokenInfo(TokenState.REVOKED, user, jti, exp)
        if self.clock.timestamp() >= exp or seq <= self._expired_upto:
            return TokenInfo(TokenState.EXPIRED, user, jti, exp)
        return TokenInfo(TokenState.VALID, user, jti, exp)

    def verify(self, token: str) -> bool:
        """True when ``token`` is ours, unexpired and not revoked (used by the hubs for ``access_token``)."""
        return self.inspect(token).state is TokenState.VALID

    def is_valid(self, token: str) -> bool:
        return self.verify(token)

    def user_of(self, token: str) -> str | None:
        info = self.inspect(token)
        return info.user if info.state is TokenState.VALID else None

    def revoke(self, token: str) -> None:
        info = self.inspect(token)
        if info.jti is not None:
            self._revoked.add(info.jti)

    def expire_all(self) -> None:
        self._expired_upto = self.issued

    def revoke_all(self) -> None:
        self._revoked_upto = self.issued
