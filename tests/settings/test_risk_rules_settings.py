"""The ``riskRules:`` section (and ``logging.format``): defaults, reading from YAML/env/flags, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest

from settings import ConfigError, EngineSettings, effective_yaml, load_settings


def test_defaults_turn_every_rule_off_and_use_cme_time() -> None:
    rules = EngineSettings().risk_rules
    assert rules.enabled is True
    assert (rules.time_zone, rules.daily_reset) == ("America/Chicago", "17:00")
    each = (rules.daily_loss_limit, rules.max_contracts, rules.trading_session, rules.max_trades_per_day)
    assert not any(rule.enabled for rule in each)
    assert rules.trading_session.flatten_at is None
    assert EngineSettings().logging.format == "text"


def test_a_full_section_is_read_from_camelcase_yaml(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml(
        """
riskRules:
  timeZone: Europe/London
  dailyReset: "6:05"
  dailyLossLimit: {enabled: true, limit: 250.5, includeUnrealized: false, markPrice: bidAsk, snapshotInterval: 5000}
  maxContracts: {enabled: true, total: 6, perSymbol: {MNQ: 4, "F.US.EP": 2, "CON.F.US.ENQ.H25": 1}}
  tradingSession: {enabled: true, start: "08:30", end: "15:10", flattenAt: "15:05", days: [Mon, Fri]}
  maxTradesPerDay: {enabled: true, limit: 3}
logging: {format: json}
"""
    )
    s = load_settings(path, env={})
    rules = s.risk_rules
    assert rules.time_zone == "Europe/London"
    assert rules.daily_reset == "06:05"  # normalised
    assert rules.daily_loss_limit.limit == 250.5 and rules.daily_loss_limit.mark_price == "bidAsk"
    assert rules.daily_loss_limit.snapshot_interval_s == 5.0
    assert rules.max_contracts.per_symbol == {"MNQ": 4, "F.US.EP": 2, "CON.F.US.ENQ.H25": 1}
    assert (rules.trading_session.flatten_at, rules.trading_session.days) == ("15:05", ["Mon", "Fri"])
    assert rules.max_trades_per_day.limit == 3
    assert s.logging.format == "json"
    # The printed configuration reads back to the same settings (per-symbol keys with dots included).
    again = write_yaml(effective_yaml(s))
    assert load_settings(again, env={}) == s


def test_env_and_flags_reach_the_section() -> None:
    env = {
        "ENGINE_RISK_RULES__MAX_CONTRACTS__PER_SYMBOL": '{"F.US.MNQ": 3}',
        "ENGINE_RISK_RULES__DAILY_LOSS_LIMIT__ENABLED": "true",
    }
    s = load_settings(env=env, overrides={"riskRules.dailyLossLimit.limit": 400, "riskRules.dailyReset": "16:00"})
    assert s.risk_rules.max_contracts.per_symbol == {"F.US.MNQ": 3}
    assert s.risk_rules.daily_loss_limit.enabled and s.risk_rules.daily_loss_limit.limit == 400
    assert s.risk_rules.daily_reset == "16:00"


def test_an_overnight_session_accepts_a_flatten_time_after_midnight(write_yaml: Callable[[str], Path]) -> None:
    s = load_settings(write_yaml("riskRules: {tradingSession: {start: '17:00', end: '15:10', flattenAt: '03:00'}}"))
    assert s.risk_rules.trading_session.flatten_at == "03:00"
    assert time.fromisoformat(s.risk_rules.trading_session.flatten_at) == time(3, 0)


BAD = [
    pytest.param("riskRules: {dailyReset: 17:00}", "riskRules.dailyReset: got 1020;", '"17:00"', id="unquoted-time"),
    pytest.param("riskRules: {dailyReset: '25:00'}", "riskRules.dailyReset: got \"25:00\"", "HH:MM", id="hour-25"),
    pytest.param("riskRules: {dailyReset: '5pm'}", "riskRules.dailyReset:", "HH:MM", id="not-a-time"),
    pytest.param("riskRules: {timeZone: Mars/Olympus}", "riskRules.timeZone:", "America/Chicago", id="unknown-zone"),
    pytest.param("riskRules: {timeZone: ../../etc}", "riskRules.timeZone:", "IANA", id="path-as-zone"),
    pytest.param("riskRules: {dailyLossLimit: {limit: -100}}", "riskRules.dailyLossLimit.limit: got -100",
                 "greater than 0", id="negative-loss-limit"),
    pytest.param("riskRules: {dailyLossLimit: {limit: .inf}}", "riskRules.dailyLossLimit.limit:", "finite",
                 id="infinite-limit"),
    pytest.param("riskRules: {dailyLossLimit: {limit: true}}", "riskRules.dailyLossLimit.limit: got true",
                 "not true/false", id="bool-limit"),
    pytest.param("riskRules: {dailyLossLimit: {markPrice: mid}}", "riskRules.dailyLossLimit.markPrice:", "'last'",
                 id="mark-price"),
    pytest.param("riskRules: {maxContracts: {total: 0}}", "riskRules.maxContracts.total: got 0", "at least 1",
                 id="zero-total"),
    pytest.param("riskRules: {maxContracts: {perSymbol: {MNQ: 0}}}", "riskRules.maxContracts.perSymbol.MNQ: got 0",
                 "at least 1", id="zero-per-symbol"),
    pytest.param("riskRules: {maxContracts: {total: 3, perSymbol: {MNQ: 5}}}", "riskRules.maxContracts.perSymbol:",
                 "at most riskRules.maxContracts.total (3); MNQ", id="per-symbol-above-total"),
    pytest.param("riskRules: {maxContracts: {perSymbol: {'M NQ': 1}}}", "riskRules.maxContracts.perSymbol:",
                 "symbol keys", id="bad-symbol-key"),
    pytest.param("riskRules: {maxContracts: {perSymbol: [MNQ]}}", "riskRules.maxContracts.perSymbol:", "mapping",
                 id="per-symbol-list"),
    pytest.param("riskRules: {tradingSession: {start: '08:30', end: '08:30'}}", "riskRules.tradingSession.end:",
                 "empty", id="empty-window"),
    pytest.param("riskRules: {tradingSession: {start: '08:30', end: '15:00', flattenAt: '16:00'}}",
                 "riskRules.tradingSession.flattenAt:", "08:30-15:00", id="flatten-outside-window"),
    pytest.param("riskRules: {tradingSession: {start: '17:00', end: '15:10', flattenAt: '16:00'}}",
                 "riskRules.tradingSession.flattenAt:", "17:00-15:10", id="flatten-outside-overnight-window"),
    pytest.param("riskRules: {tradingSession: {days: []}}", "riskRules.tradingSession.days:", "at least one day",
                 id="no-days"),
    pytest.param("riskRules: {tradingSession: {days: [Mon, Mon]}}", "riskRules.tradingSession.days:", "each day once",
                 id="repeated-day"),
    pytest.param("riskRules: {tradingSession: {days: [Monday]}}", "riskRules.tradingSession.days[0]:", "'Mon'",
                 id="long-day-name"),
    pytest.param("riskRules: {maxTradesPerDay: {limit: 0}}", "riskRules.maxTradesPerDay.limit: got 0", "at least 1",
                 id="zero-trades"),
    pytest.param("riskRules: {maxTradesPerDay: {enabeld: true}}", "riskRules.maxTradesPerDay.enabeld",
                 "did you mean 'enabled'", id="typo"),
    pytest.param("riskRules: {enabled: maybe}", "riskRules.enabled: got \"maybe\"", "true or false", id="bad-switch"),
    pytest.param("logging: {format: xml}", "logging.format: got \"xml\"", "'text'", id="log-format"),
]


@pytest.mark.parametrize(("text", "starts", "mentions"), BAD)
def test_bad_values_give_one_line_naming_the_camelcase_path(
    write_yaml: Callable[[str], Path], text: str, starts: str, mentions: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_yaml(text + "\n"), env={})
    [line] = caught.value.problems
    assert line.startswith(starts), line
    assert mentions in line, line
    assert "\n" not in line


def test_a_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"ENGINE_RISK_RULES__DAILY_RESET": "noon"})
    [line] = caught.value.problems
    assert line.startswith("ENGINE_RISK_RULES__DAILY_RESET (riskRules.dailyReset): got \"noon\""), line


def test_every_problem_of_the_section_is_reported_at_once(write_yaml: Callable[[str], Path]) -> None:
    path = write_yaml("riskRules: {timeZone: Nowhere, dailyReset: '99:99', maxTradesPerDay: {limit: -1}}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "riskRules.timeZone",
        "riskRules.dailyReset",
        "riskRules.maxTradesPerDay.limit",
    ]
