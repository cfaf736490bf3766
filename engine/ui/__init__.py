"""The terminal dashboard of ``run --simulate`` (and of a real run): a pure view model, a rich renderer, a Trio driver.

Public API::

    DashboardModel and its rows (HubRow, BreakerRow, TokenRow, RateLimitRow, WindowUsage, AccountRow, PositionRow,
    RuleRow, RuleStatus, EnforcementRow, FindingRow, RunStats, Mode)     -- engine.ui.model
    render(model) -> RenderableType; render_text(model, width=120) -> str;
    summary_lines(stats) -> list[str]; status_line(model) -> str        -- engine.ui.render
    await run_dashboard(get_model, *, refresh_s=0.5, console=None, screen=False)
    await run_status_log(get_model, *, interval_s=10.0, emit=None); is_interactive(console=None) -> bool
                                                                        -- engine.ui.live
"""

from engine.ui.live import is_interactive, run_dashboard, run_status_log
from engine.ui.model import (
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
    describe_details,
    recent,
)
from engine.ui.render import render, render_text, status_line, summary_lines

__all__ = [
    "AccountRow",
    "BreakerRow",
    "DashboardModel",
    "EnforcementRow",
    "FindingRow",
    "HubRow",
    "Mode",
    "PositionRow",
    "RateLimitRow",
    "RuleRow",
    "RuleStatus",
    "RunStats",
    "TokenRow",
    "WindowUsage",
    "describe_details",
    "is_interactive",
    "recent",
    "render",
    "render_text",
    "run_dashboard",
    "run_status_log",
    "status_line",
    "summary_lines",
]
