"""Render a :class:`~engine.ui.model.DashboardModel` with rich: one frame as a renderable, as plain text, or as the
exit summary.

Why functions of the model only: a frame is then reproducible from a value (tests render a hand-built model to text
and read it), and the same code serves the live terminal view, the no-terminal fallback and the summary. Colours
carry the states at a glance: green healthy (connected, closed breaker, rule ok), yellow in transition (connecting,
reconnecting, half-open, refreshing, warning), red down (disconnected, open breaker, breached, locked).
"""

from __future__ import annotations

import io
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.ui.model import (
    AccountRow,
    DashboardModel,
    Mode,
    RateLimitRow,
    RuleRow,
    RuleStatus,
    RunStats,
    TokenRow,
)

RECENT_ROWS = 8
"""Enforcement actions and reconciliation findings shown (the most recent ones)."""

NONE = "-"

_STATE_STYLES: dict[str, str] = {
    # connection
    "connected": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "disconnected": "red",
    # breaker ("closed" is also a closed hub: both read as healthy-or-stopped, see _hub_style)
    "closed": "green",
    "half_open": "yellow",
    "open": "bold red",
    "forced_open": "bold red",
    "disabled": "dim",
    # token
    "valid": "green",
    "authenticating": "yellow",
    "refreshing": "yellow",
    "expired": "red",
    "failed": "bold red",
    "none": "dim",
}
_RULE_STYLES = {
    RuleStatus.OK: "green",
    RuleStatus.WARNING: "yellow",
    RuleStatus.BREACHED: "bold red",
    RuleStatus.LOCKED: "bold magenta",
    RuleStatus.OFF: "dim",
}
_MODE_STYLES = {Mode.SIMULATED: "bold cyan", Mode.CHAOS: "bold magenta", Mode.REAL: "bold green"}


# --------------------------------------------------------------------------------------------------- formatting
def fmt_seconds(value: float | None) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h03m``; ``-`` for None."""
    if value is None:
        return NONE
    if value < 10:
        return f"{max(value, 0.0):.1f}s"
    whole = int(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def fmt_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours unbounded)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def fmt_money(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return NONE
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def fmt_price(value: float | None) -> str:
    """At least two decimals, up to four when the tick needs them (``6,350.25``, ``68.505``)."""
    if value is None:
        return NONE
    text = f"{value:,.4f}"
    while text.endswith("0") and len(text.rsplit(".", 1)[1]) > 2:
        text = text[:-1]
    return text


def fmt_value(value: float | str | None) -> str:
    if value is None:
        return NONE
    if isinstance(value, str):
        return value
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def fmt_time(instant: datetime | None) -> str:
    return NONE if instant is None else instant.strftime("%H:%M:%S")


def _state(state: str) -> Text:
    return Text(state.replace("_", "-"), style=_STATE_STYLES.get(state, ""))


def _pnl(value: float | None) -> Text:
    style = "" if value is None or value == 0 else ("green" if value > 0 else "red")
    return Text(fmt_money(value, signed=True), style=style)


# --------------------------------------------------------------------------------------------------- sections
def header(model: DashboardModel) -> Text:
    text = Text()
    text.append(f" {model.mode.value.upper()} ", style=f"reverse {_MODE_STYLES[model.mode]}")
    if model.mode_detail:
        text.append(f"  {model.mode_detail}")
    text.append(f"   up {fmt_duration(model.stats.uptime_s)}")
    if model.now is not None:
        text.append(f"   {model.now.strftime('%Y-%m-%d %H:%M:%S %Z')}".rstrip())
    return text


def connections_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Connections", title_justify="left", pad_edge=False)
    table.add_column("hub", no_wrap=True)
    table.add_column("state", no_wrap=True, min_width=12)
    table.add_column("last msg", justify="right")
    table.add_column("reconn", justify="right")
    table.add_column("ping", justify="right")
    for hub in model.hubs:
        latency = NONE if hub.latency_ms is None else f"{hub.latency_ms:.0f}ms"
        table.add_row(hub.name, _state(hub.state), fmt_seconds(hub.last_message_age_s), str(hub.reconnects), latency)
    if not model.hubs:
        table.add_row("(no hubs)", "", "", "", "")
    return table


def breakers_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Circuit breakers", title_justify="left", pad_edge=False)
    table.add_column("breaker", no_wrap=True)
    table.add_column("state", no_wrap=True, min_width=12)
    table.add_column("next probe", justify="right")
    for breaker in model.breakers:
        table.add_row(breaker.name, _state(breaker.state), fmt_seconds(breaker.retry_in_s))
    if not model.breakers:
        table.add_row("(no breakers)", "", "")
    return table


def _token_cells(token: TokenRow | None) -> list[tuple[str, Text | str]]:
    if token is None:
        return [("token", Text("none", style="dim"))]
    revision = NONE if token.revision is None else str(token.revision)
    expires = fmt_seconds(token.expires_in_s) if token.expires_in_s is None or token.expires_in_s >= 0 else "expired"
    return [
        ("token", _state(token.state)),
        ("revision", revision),
        ("refresh in", fmt_seconds(token.refresh_in_s)),
        ("expires in", expires),
    ]


def _limit_cells(limits: RateLimitRow | None) -> list[tuple[str, Text | str]]:
    if limits is None:
        return [("rate limit", Text("n/a", style="dim"))]
    cells: list[tuple[str, Text | str]] = []
    for w in limits.windows:
        ratio = w.used / w.limit if w.limit else 0.0
        style = "red" if ratio >= 0.95 else "yellow" if ratio >= 0.75 else "green"
        cells.append((f"{w.name} window", Text(f"{w.used}/{w.limit} per {fmt_value(w.window_s)}s", style=style)))
    cells.append(("queue depth", str(limits.queue_depth)))
    cells.append(("429s", Text(str(limits.rate_limited_429), style="red" if limits.rate_limited_429 else "green")))
    if limits.paused_for_s > 0:
        cells.append(("paused", Text(fmt_seconds(limits.paused_for_s), style="yellow")))
    return cells


def command_path_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Token & rate limit", title_justify="left",
                  show_header=False, pad_edge=False)
    table.add_column("what")
    table.add_column("value")
    for name, value in _token_cells(model.token) + _limit_cells(model.rate_limit):
        table.add_row(name, value)
    return table


def _positions_text(account: AccountRow) -> Text:
    if not account.positions:
        return Text("flat", style="dim")
    text = Text()
    for i, p in enumerate(account.positions):
        if i:
            text.append("\n")
        text.append(f"{p.contract} {p.size:+d} @ {fmt_price(p.avg_price)}")
        text.append(f" / {fmt_price(p.mark)}" if p.mark is not None else " / unpriced", style="dim")
    return text


def accounts_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Accounts", title_justify="left", pad_edge=False)
    table.add_column("account", no_wrap=True)
    table.add_column("balance", justify="right", no_wrap=True)
    table.add_column("realized", justify="right", no_wrap=True)
    table.add_column("unrealized", justify="right", no_wrap=True)
    table.add_column("positions (size @ avg / mark)", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("orders", justify="right", no_wrap=True)
    table.add_column("lockout", no_wrap=True)
    for a in model.accounts:
        lockout = Text(f"until {fmt_time(a.lockout_until)}", style="bold red") if a.lockout_until else Text("-")
        table.add_row(f"{a.id} {a.name}", fmt_money(a.balance), _pnl(a.realized_pnl), _pnl(a.unrealized_pnl),
                      _positions_text(a), str(a.working_orders), lockout)
    if not model.accounts:
        table.add_row("(no accounts yet)", "", "", "", "", "", "")
    return table


def _rule_row(rule: RuleRow) -> tuple[str, Text, str, str]:
    status = rule.status if rule.enabled else RuleStatus.OFF
    return rule.name, Text(status.value, style=_RULE_STYLES[status]), fmt_value(rule.measured), fmt_value(rule.limit)


def rules_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Risk rules", title_justify="left", pad_edge=False)
    table.add_column("rule")
    table.add_column("status")
    table.add_column("measured", justify="right")
    table.add_column("limit", justify="right")
    for rule in model.rules:
        table.add_row(*_rule_row(rule))
    if not model.rules:
        table.add_row("(no rules)", "", "", "")
    return table


def enforcement_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Recent enforcement", title_justify="left", pad_edge=False)
    table.add_column("time")
    table.add_column("account")
    table.add_column("rule")
    table.add_column("actions", ratio=1)
    table.add_column("outcome")
    for row in model.enforcement[:RECENT_ROWS]:
        outcome_style = "green" if row.outcome in ("done", "completed", "ok") else ""
        table.add_row(fmt_time(row.at), NONE if row.account_id is None else str(row.account_id), row.rule,
                      "; ".join(row.actions) or NONE, Text(row.outcome, style=outcome_style))
    if not model.enforcement:
        table.add_row("", "", Text("none", style="dim"), "", "")
    return table


def findings_table(model: DashboardModel) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="Reconciliation findings", title_justify="left",
                  pad_edge=False)
    table.add_column("time")
    table.add_column("kind")
    table.add_column("account")
    table.add_column("detail", ratio=1)
    for row in model.findings[:RECENT_ROWS]:
        table.add_row(fmt_time(row.at), row.kind, NONE if row.account_id is None else str(row.account_id), row.detail)
    if not model.findings:
        table.add_row("", Text("none", style="dim"), "", "")
    return table


def stats_text(stats: RunStats) -> Text:
    text = Text()
    parts: list[tuple[str, int, bool]] = [
        ("faults injected", stats.faults_injected, False),
        ("reconnects", stats.reconnects, False),
        ("findings", stats.findings, False),
        ("enforcement actions", stats.enforcement_actions, False),
        ("duplicate orders", stats.duplicate_orders, True),
        ("429s", stats.rate_limited_429, True),
    ]
    for i, (name, value, must_be_zero) in enumerate(parts):
        if i:
            text.append("   ")
        text.append(f"{name} ")
        style = ("bold red" if value else "green") if must_be_zero else "bold"
        text.append(str(value), style=style)
    return text


def _pair(left: RenderableType, right: RenderableType) -> Table:
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(left, right)
    return grid


# --------------------------------------------------------------------------------------------------- entry points
def render(model: DashboardModel) -> RenderableType:
    """One frame of the dashboard."""
    body = Group(
        _pair(Group(connections_table(model), breakers_table(model)), command_path_table(model)),
        accounts_table(model),
        _pair(rules_table(model), findings_table(model)),
        enforcement_table(model),
        stats_text(model.stats),
    )
    return Panel(body, title=header(model), title_align="left", box=box.ROUNDED)


def render_text(model: DashboardModel, width: int = 120) -> str:
    """The frame as plain text (no colour codes): for tests and for a terminal-less status dump."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None, force_terminal=False,
                      force_jupyter=False, legacy_windows=False)
    console.print(render(model))
    return console.export_text(styles=False)


def summary_lines(stats: RunStats) -> list[str]:
    """The exit summary, one fact per line."""
    return [
        f"Run time: {fmt_duration(stats.uptime_s)}",
        f"Faults injected: {stats.faults_injected}",
        f"Reconnects: {stats.reconnects}",
        f"Reconciliation findings: {stats.findings}",
        f"Enforcement actions: {stats.enforcement_actions}",
        f"Duplicate orders: {stats.duplicate_orders}",
        f"429s received: {stats.rate_limited_429}",
    ]


def status_line(model: DashboardModel) -> str:
    """A one-line status for log output (``--no-dashboard`` or no terminal)."""
    hubs = " ".join(f"{h.name}={h.state}" for h in model.hubs) or "hubs=n/a"
    breakers = " ".join(f"breaker:{b.name}={b.state}" for b in model.breakers)
    token = f"token={model.token.state}" if model.token else "token=none"
    pnl = " ".join(
        f"{a.id}:{fmt_money(a.realized_pnl, signed=True)}/{fmt_money(a.unrealized_pnl, signed=True)}"
        + (" LOCKED" if a.lockout_until else "")
        for a in model.accounts
    )
    s = model.stats
    parts = [f"[{model.mode.value}] up {fmt_duration(s.uptime_s)}", hubs, breakers, token, f"pnl {pnl}" if pnl else "",
             f"faults={s.faults_injected} reconnects={s.reconnects} findings={s.findings} "
             f"enforcement={s.enforcement_actions} duplicates={s.duplicate_orders} 429s={s.rate_limited_429}"]
    return " | ".join(p for p in parts if p)
