"""Configuration of the simulated Gateway: who may log in, which accounts and contracts exist, and every knob the
tests and benchmarks turn (token lifetime, rate windows, partial fills, sessions, price-process speed).

Plain dataclasses, no I/O: the CLI builds one from flags, tests build one in a line.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class ContractSpec:
    id: str
    name: str
    description: str
    symbol_id: str
    tick_size: float
    tick_value: float
    start_price: float
    fee_per_contract: float
    """Exchange + clearing fee per contract per side, charged on every fill."""
    active: bool = True


@dataclass(frozen=True, slots=True)
class AccountSpec:
    id: int
    name: str
    balance: float
    user: str = "sim"
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True
    bracket_mode: Literal["auto_oco", "position"] = "auto_oco"
    """Server-side brackets on Order/place need Auto OCO mode; Position-Brackets mode rejects them (errorCode 2)."""


def default_contracts() -> list[ContractSpec]:
    return [
        ContractSpec("CON.F.US.EP.Z26", "ESZ6", "E-mini S&P 500: December 2026", "F.US.EP", 0.25, 12.5, 6350.0, 1.40),
        ContractSpec("CON.F.US.ENQ.Z26", "NQZ6", "E-mini NASDAQ-100: December 2026", "F.US.ENQ", 0.25, 5.0, 23100.0,
                     1.40),
        ContractSpec("CON.F.US.MES.Z26", "MESZ6", "Micro E-mini S&P 500: December 2026", "F.US.MES", 0.25, 1.25, 6350.0,
                     0.37),
        ContractSpec("CON.F.US.MNQ.Z26", "MNQZ6", "Micro E-mini Nasdaq-100: December 2026", "F.US.MNQ", 0.25, 0.5,
                     23100.0, 0.37),
        ContractSpec("CON.F.US.CLE.F27", "CLF7", "Crude Light: January 2027", "F.US.CLE", 0.01, 10.0, 68.50, 1.50),
        ContractSpec("CON.F.US.GCE.G27", "GCG7", "Gold: February 2027", "F.US.GCE", 0.1, 10.0, 3400.0, 1.55),
        ContractSpec("CON.F.US.EP.U26", "ESU6", "E-mini S&P 500: September 2026 (expired)", "F.US.EP", 0.25, 12.5,
                     6300.0, 1.40, active=False),
    ]


def default_accounts() -> list[AccountSpec]:
    return [
        AccountSpec(1001, "SIM-50K-1", 50_000.0),
        AccountSpec(1002, "SIM-50K-2", 50_000.0),
        AccountSpec(1003, "SIM-150K", 150_000.0, bracket_mode="position"),
        AccountSpec(1004, "SIM-BLOWN", 0.0, can_trade=False, is_visible=True),
    ]


@dataclass(slots=True)
class SimConfig:
    seed: int = 0
    epoch: datetime | None = None
    """Wall-clock instant at Trio time zero of the run (None: the real time at first use)."""
    users: dict[str, str] = field(default_factory=lambda: {"sim": "sim-key"})
    """userName -> (primary) apiKey accepted by Auth/loginKey."""
    api_keys: dict[str, list[str]] = field(default_factory=dict)
    """userName -> further apiKeys of the same user: a user may hold several API keys (each front end its own)
    and every one logs in as that user, trading the same accounts (e.g. the scripted trader beside the engine)."""
    accounts: list[AccountSpec] = field(default_factory=default_accounts)
    contracts: list[ContractSpec] = field(default_factory=default_contracts)

    token_ttl_s: float = 24 * 3600.0
    jwt_secret: bytes = b"simulator-secret-not-for-production"
    validate_accepts_expired: bool = False
    """Whether Auth/validate refreshes an already expired token (unconfirmed for the real Gateway: off by default)."""

    rate_limits: bool = True
    """False switches every rate window off (benchmarks)."""
    general_limit: tuple[int, float] = (200, 60.0)
    history_limit: tuple[int, float] = (50, 30.0)

    tick_interval_s: float = 1.0
    """Seconds (Trio clock) between price-process steps; raise it for long virtual soaks."""
    publish_market_data: bool = True
    partial_fill_parts: int = 1
    """Split each fill of an order of size > 1 into up to this many trades (1 = fill at once)."""
    partial_fill_interval_s: float = 0.5
    """Trio seconds between the partial fills of one order."""

    sessions: Literal["24x7", "cme"] = "24x7"
    """``cme``: CME Globex hours in America/Chicago (Sun 17:00 - Fri 16:00, daily halt 16:00-17:00)."""

    max_body_bytes: int = 1 << 20
    fault_profile: str = "none"
    hard_exit_on_internal_error: bool = False
    """Tests only: re-raise handler exceptions instead of answering 500."""

    def accepts(self, user_name: str, api_key: str) -> bool:
        """Whether ``api_key`` is one of ``user_name``'s keys (the primary one or any of :attr:`api_keys`)."""
        keys = [self.users[user_name]] if user_name in self.users else []
        keys += self.api_keys.get(user_name, [])
        return any(hmac.compare_digest(key.encode(), api_key.encode()) for key in keys)
