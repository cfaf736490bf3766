"""The dashboard frame rendered from a populated model: every section's content, colours, the exit summary and the
one-line status."""

from __future__ import annotations

import dataclasses
import io
import re

from rich.console import Console

from engine.ui import (
    DashboardModel,
    Mode,
    RuleRow,
    RuleStatus,
    RunStats,
    recent,
    render,
    render_text,
    status_line,
    summary_lines,
)
from tests.ui.sample import sample_model

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_text_frame_shows_hubs_breakers_token_and_rate_limit() -> None:
    text = render_text(sample_model())
    assert not ANSI.search(text)
    assert "CHAOS" in text and "simulator seed 7" in text and "up 1:02:05" in text
    user, = lines_with(text, " user ")
    assert "connected" in user and "0.4s" in user and "12ms" in user
    market, = lines_with(text, " market ")
    assert "reconnecting" in market and "31s" in market and " 5 " in market
    rest, = lines_with(text, " rest ")
    assert "open" in rest and "42s" in rest
    assert "half-open" in lines_with(text, "market-hub")[0]
    assert "closed" in lines_with(text, "user-hub")[0]
    assert "valid" in lines_with(text, "token")[0]
    assert "4h02m" in lines_with(text, "refresh in")[0] and "6h02m" in lines_with(text, "expires in")[0]
    assert "57/200 per 60s" in text and "3/50 per 30s" in text
    assert "2" in lines_with(text, "queue depth")[0]


def test_text_frame_shows_accounts_positions_and_pnl() -> None:
    text = render_text(sample_model())
    first, = lines_with(text, "1001 SIM-50K-1")
    assert "49,512.25" in first and "-487.75" in first and "+125.50" in first
    assert "ESZ6 +2 @ 6,350.25 / 6,351.50" in first and re.search(r"\b3\b", first)
    assert "MNQZ6 -1 @ 23,100.50 / 23,102.00" in text
    second, = lines_with(text, "1002 SIM-50K-2")
    assert "-1,100.00" in second and "flat" in second and "until 23:00:00" in second


def test_text_frame_shows_rules_enforcement_findings_and_stats() -> None:
    text = render_text(sample_model())
    assert re.search(r"dailyLossLimit\s+breached\s+-1,100\s+-1,000", text)
    assert re.search(r"maxContracts\s+warning\s+8\s+10", text)
    assert re.search(r"maxTradesPerDay\s+ok\s+12\s+50", text)
    assert re.search(r"tradingSession\s+off\s+open\s+17:00-15:10", text)  # disabled shows as off
    assert re.search(r"lockout\s+locked", text)
    enforcement, = lines_with(text, "15:29:58")
    assert "1002" in enforcement and "dailyLossLimit" in enforcement and "completed" in enforcement
    assert "close CON.F.US.EP.Z26 long 2; cancel order 9012" in enforcement
    finding, = lines_with(text, "15:20:01")
    assert "missed_order_filled" in finding and "1001" in finding and "orderId=9007" in finding
    assert re.search(r"faults injected 17\s+reconnects 7\s+findings 1\s+enforcement actions 1\s+duplicate orders 0"
                     r"\s+429s 0", text)


def test_empty_model_renders_placeholders() -> None:
    text = render_text(DashboardModel(mode=Mode.REAL, mode_detail="api.topstepx.com"))
    assert "REAL GATEWAY" in text and "api.topstepx.com" in text
    for placeholder in ("(no hubs)", "(no breakers)", "(no accounts yet)", "(no rules)", "n/a"):
        assert placeholder in text


def test_recent_rows_are_capped_and_newest_first() -> None:
    base = sample_model()
    rows = [dataclasses.replace(base.enforcement[0], rule=f"rule{i}") for i in range(12)]
    text = render_text(dataclasses.replace(base, enforcement=recent(rows, 20)))
    shown = re.findall(r"rule(\d+)", text)
    assert shown == [str(i) for i in range(11, 3, -1)]  # the 8 most recent, newest first
    assert recent(rows, 0) == ()


def test_states_are_coloured() -> None:
    console = Console(file=io.StringIO(), width=120, record=True, color_system="standard", force_terminal=True)
    console.print(render(sample_model()))
    styled = console.export_text(styles=True)
    red, green, yellow = "\x1b[1;31m", "\x1b[32m", "\x1b[33m"
    assert f"{green}connected" in styled
    assert f"{yellow}reconnecting" in styled
    assert f"{red}open" in styled  # the rest breaker
    assert f"{yellow}half-open" in styled
    assert f"{red}breached" in styled
    assert f"{yellow}warning" in styled
    assert f"{green}ok" in styled


def test_nonzero_duplicates_and_429s_show_in_red() -> None:
    console = Console(file=io.StringIO(), width=120, record=True, color_system="standard", force_terminal=True)
    console.print(render(sample_model(duplicates=2, limited=3)))
    styled = console.export_text(styles=True)
    assert "duplicate orders \x1b[1;31m2" in styled and "429s \x1b[1;31m3" in styled


def test_summary_lines() -> None:
    lines = summary_lines(sample_model().stats)
    assert lines == [
        "Run time: 1:02:05",
        "Faults injected: 17",
        "Reconnects: 7",
        "Reconciliation findings: 1",
        "Enforcement actions: 1",
        "Duplicate orders: 0",
        "429s received: 0",
    ]
    assert summary_lines(RunStats(uptime_s=90061.7, duplicate_orders=1))[0] == "Run time: 25:01:01"
    assert "Duplicate orders: 1" in summary_lines(RunStats(duplicate_orders=1))


def test_status_line() -> None:
    line = status_line(sample_model())
    assert line.startswith("[chaos] up 1:02:05")
    assert "user=connected market=reconnecting" in line and "breaker:rest=open" in line
    assert "1002:-1,100.00/- LOCKED" in line and "duplicates=0 429s=0" in line
    bare = status_line(DashboardModel())
    assert bare.startswith("[simulated] up 0:00:00") and "hubs=n/a" in bare and "token=none" in bare


def test_rule_values_format() -> None:
    text = render_text(DashboardModel(rules=(RuleRow("maxContracts", True, RuleStatus.OK, 2.5, 1_000_000),)))
    assert re.search(r"maxContracts\s+ok\s+2.5\s+1,000,000", text)
