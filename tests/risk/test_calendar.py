"""Trading day, daily reset and session windows in exchange time, across daylight saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.risk import SessionWindow, TradingCalendar

CHICAGO = ZoneInfo("America/Chicago")
CME = TradingCalendar(CHICAGO, time(17, 0))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "next_reset", "trading_day"),
    [
        # Summer (CDT, UTC-5): 17:00 Chicago = 22:00 UTC.
        (utc(2025, 7, 15, 21, 59), utc(2025, 7, 15, 22), date(2025, 7, 15)),
        (utc(2025, 7, 15, 22, 0), utc(2025, 7, 16, 22), date(2025, 7, 16)),  # the reset instant opens the next day
        # Winter (CST, UTC-6): 17:00 Chicago = 23:00 UTC.
        (utc(2025, 1, 10, 22, 30), utc(2025, 1, 10, 23), date(2025, 1, 10)),
        # Friday evening after the reset belongs to the next calendar day (Saturday's name, the CME has none).
        (utc(2025, 1, 10, 23, 30), utc(2025, 1, 11, 23), date(2025, 1, 11)),
        # Spring forward on Sunday 2025-03-09: Saturday's reset is at 23:00 UTC, Sunday's at 22:00 UTC.
        (utc(2025, 3, 8, 23, 30), utc(2025, 3, 9, 22), date(2025, 3, 9)),
        (utc(2025, 3, 9, 8, 0), utc(2025, 3, 9, 22), date(2025, 3, 9)),
        # Fall back on Sunday 2025-11-02: Saturday's reset at 22:00 UTC, Sunday's at 23:00 UTC.
        (utc(2025, 11, 1, 22, 30), utc(2025, 11, 2, 23), date(2025, 11, 2)),
        (utc(2025, 11, 2, 22, 30), utc(2025, 11, 2, 23), date(2025, 11, 2)),
    ],
)
def test_cme_daily_reset_and_trading_day(now: datetime, next_reset: datetime, trading_day: date) -> None:
    assert CME.next_reset(now) == next_reset
    assert CME.trading_day(now) == trading_day
    assert CME.last_reset(now) <= now < CME.next_reset(now)


def test_the_day_across_a_dst_change_is_23_or_25_hours_long() -> None:
    spring = CME.next_reset(utc(2025, 3, 9, 12)) - CME.last_reset(utc(2025, 3, 9, 12))
    fall = CME.next_reset(utc(2025, 11, 2, 12)) - CME.last_reset(utc(2025, 11, 2, 12))
    assert (spring, fall) == (timedelta(hours=23), timedelta(hours=25))


def test_a_morning_reset_names_the_day_by_its_own_date() -> None:
    calendar = TradingCalendar(ZoneInfo("Europe/London"), time(0, 0))
    assert calendar.trading_day(utc(2025, 7, 15, 22, 59)) == date(2025, 7, 15)  # 23:59 BST
    assert calendar.trading_day(utc(2025, 7, 15, 23, 0)) == date(2025, 7, 16)  # 00:00 BST


@pytest.mark.parametrize(("zone", "reset"), [(CHICAGO, time(17, 0)), (ZoneInfo("Europe/London"), time(0, 0)),
                                             (ZoneInfo("Australia/Sydney"), time(8, 30))])
def test_day_bounds_hold_exactly_the_instants_of_that_trading_day(zone: ZoneInfo, reset: time) -> None:
    calendar = TradingCalendar(zone, reset)
    instant = utc(2025, 1, 1)
    while instant < utc(2026, 1, 1):  # every 97 minutes of a year: both DST changes, every reset boundary nearby
        start, end = calendar.day_bounds(calendar.trading_day(instant))
        assert start <= instant < end, instant
        assert calendar.trading_day(start) == calendar.trading_day(instant) != calendar.trading_day(end)
        instant += timedelta(minutes=97)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CME.next_reset(datetime(2025, 7, 15, 12))


DAY = SessionWindow.build(CHICAGO, time(8, 30), time(15, 10), None, ["Mon", "Tue", "Wed", "Thu", "Fri"])
OVERNIGHT = SessionWindow.build(CHICAGO, time(17, 0), time(15, 10), time(15, 5), ["Sun", "Mon", "Tue", "Wed", "Thu"])


@pytest.mark.parametrize(
    ("window", "now", "is_open"),
    [
        (DAY, utc(2025, 7, 15, 13, 29), False),  # Tue 08:29 CDT
        (DAY, utc(2025, 7, 15, 13, 30), True),  # 08:30 opens
        (DAY, utc(2025, 7, 15, 20, 9), True),  # 15:09
        (DAY, utc(2025, 7, 15, 20, 10), False),  # 15:10 closes
        (DAY, utc(2025, 7, 19, 15, 0), False),  # Saturday
        (DAY, utc(2025, 1, 14, 14, 30), True),  # winter: 08:30 CST = 14:30 UTC
        (DAY, utc(2025, 1, 14, 14, 29), False),
        (OVERNIGHT, utc(2025, 7, 13, 22, 0), True),  # Sunday 17:00 opens
        (OVERNIGHT, utc(2025, 7, 14, 3, 0), True),  # Sunday 22:00, past midnight UTC
        (OVERNIGHT, utc(2025, 7, 14, 20, 4), True),  # Monday 15:04
        (OVERNIGHT, utc(2025, 7, 14, 20, 5), False),  # Monday 15:05: flatten time
        (OVERNIGHT, utc(2025, 7, 14, 21, 59), False),  # Monday 16:59: the daily break
        (OVERNIGHT, utc(2025, 7, 18, 21, 0), False),  # Friday 16:00: no Friday-evening window
        (OVERNIGHT, utc(2025, 7, 18, 23, 0), False),  # Friday 18:00
        (OVERNIGHT, utc(2025, 3, 9, 22, 0), True),  # Sunday 17:00 CDT on the spring-forward day
        (OVERNIGHT, utc(2025, 3, 9, 21, 30), False),  # 16:30 CDT
    ],
)
def test_session_window(window: SessionWindow, now: datetime, is_open: bool) -> None:
    assert window.is_open(now) is is_open


def test_flatten_period_and_next_open() -> None:
    assert OVERNIGHT.in_flatten_period(utc(2025, 7, 14, 20, 7))  # 15:07, between flattenAt 15:05 and end 15:10
    assert not OVERNIGHT.in_flatten_period(utc(2025, 7, 14, 20, 10))  # 15:10: plain outside
    assert not OVERNIGHT.in_flatten_period(utc(2025, 7, 14, 20, 0))  # open
    assert OVERNIGHT.next_open(utc(2025, 7, 14, 20, 7)) == utc(2025, 7, 14, 22)
    # Friday afternoon: the next window opens Sunday 17:00.
    assert OVERNIGHT.next_open(utc(2025, 7, 18, 20, 30)) == utc(2025, 7, 20, 22)
    # From a Friday in winter (CST) to the Monday after spring-forward (CDT): 08:30 is then 13:30 UTC, not 14:30.
    assert DAY.next_open(utc(2025, 3, 7, 22)) == utc(2025, 3, 10, 13, 30)
