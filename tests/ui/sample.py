"""A populated dashboard model shared by the UI tests."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.ui import (
    AccountRow,
    BreakerRow,
    DashboardModel,
    EnforcementRow,
    FindingRow,
    HubRow,
    Mode,
    PositionRow,
    RateLimitRow,
    RuleRow,
    RuleStatus,
    RunStats,
    TokenRow,
    WindowUsage,
)

NOW = datetime(2026, 11, 25, 15, 30, 5, tzinfo=UTC)


def sample_model(*, mode: Mode = Mode.CHAOS, duplicates: int = 0, limited: int = 0) -> DashboardModel:
    return DashboardModel(
        mode=mode,
        mode_detail="simulator seed 7",
        now=NOW,
        hubs=(HubRow("user", "connected", 0.4, 2, 12.0), HubRow("market", "reconnecting", 31.0, 5, None)),
        breakers=(BreakerRow("rest", "open", 42.0), BreakerRow("user-hub", "closed"),
                  BreakerRow("market-hub", "half_open")),
        token=TokenRow("valid", 3, 4 * 3600 + 120, 6 * 3600 + 120),
        rate_limit=RateLimitRow((WindowUsage("general", 57, 200, 60.0), WindowUsage("history", 3, 50, 30.0)), 2,
                                limited, 0.0),
        accounts=(
            AccountRow(1001, "SIM-50K-1", 49_512.25, -487.75, 125.5,
                       (PositionRow("ESZ6", 2, 6350.25, 6351.5), PositionRow("MNQZ6", -1, 23100.5, 23102.0)), 3),
            AccountRow(1002, "SIM-50K-2", 48_900.0, -1_100.0, None, (), 0,
                       lockout_until=datetime(2026, 11, 25, 23, 0, tzinfo=UTC)),
        ),
        rules=(
            RuleRow("dailyLossLimit", True, RuleStatus.BREACHED, -1100.0, -1000.0),
            RuleRow("maxContracts", True, RuleStatus.WARNING, 8, 10),
            RuleRow("maxTradesPerDay", True, RuleStatus.OK, 12, 50),
            RuleRow("tradingSession", False, RuleStatus.OK, "open", "17:00-15:10"),
            RuleRow("lockout", True, RuleStatus.LOCKED, "1002", None),
        ),
        enforcement=(
            EnforcementRow(datetime(2026, 11, 25, 15, 29, 58, tzinfo=UTC), 1002, "dailyLossLimit",
                           ("close CON.F.US.EP.Z26 long 2", "cancel order 9012"), "completed"),
        ),
        findings=(
            FindingRow(datetime(2026, 11, 25, 15, 20, 1, tzinfo=UTC), "missed_order_filled", 1001,
                       "orderId=9007 status=2"),
        ),
        stats=RunStats(uptime_s=3725.0, faults_injected=17, reconnects=7, findings=1, enforcement_actions=1,
                       duplicate_orders=duplicates, rate_limited_429=limited),
    )
