"""Exchange-time arithmetic for the risk rules: the trading day, the daily reset and the trading-session window.

Why a module of its own: these are the only places where wall time meets a time zone, and they are where daylight
saving time bites. Every instant handed out here is an aware UTC ``datetime``, and every comparison is between UTC
instants: Python compares two datetimes that share one ``tzinfo`` object by their *local* fields, ignoring the offset,
which is wrong across a DST change. Local times are built with :mod:`zoneinfo` (``datetime.combine(day, t, zone)``):
a time that does not exist (the spring-forward gap) lands one hour later, an ambiguous one (fall-back) on its first
occurrence.

Pure: "now" is always an argument (the engine reads it from :class:`engine.protocol.timebase.WallClock`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Index = ``date.weekday()``; the spelling of ``riskRules.tradingSession.days``."""

_NOON = time(12, 0)


def parse_time_of_day(text: str) -> time:
    """``"17:00"`` -> ``time(17, 0)`` (the settings already validated and normalised the text)."""
    return time.fromisoformat(text)


def require_aware(instant: datetime, what: str = "instant") -> datetime:
    """The same instant in UTC; a naive datetime is a programming error (it has no place on a time line)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the wall clocks of ``zone`` show ``at`` on ``day``."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """The daily reset and the trading day it delimits.

    A trading day runs from one reset to the next. It is named after the date on which it *ends* when the reset is in
    the afternoon or evening (the CME convention: Sunday 17:00 opens Monday's trading day), and after the date on which
    it starts otherwise (a midnight reset names the day by its own date).
    """

    zone: ZoneInfo
    reset: time

    def _resets_around(self, now: datetime) -> Iterator[datetime]:
        local_day = now.astimezone(self.zone).date()
        for offset in range(-2, 3):
            yield local_instant(local_day + timedelta(days=offset), self.reset, self.zone)

    def last_reset(self, now: datetime) -> datetime:
        """The latest reset at or before ``now``: the start of the current trading day."""
        now = require_aware(now)
        return max(r for r in self._resets_around(now) if r <= now)

    def next_reset(self, now: datetime) -> datetime:
        """The first reset strictly after ``now``: when a lockout ends and the daily counters start again."""
        now = require_aware(now)
        return min(r for r in self._resets_around(now) if r > now)

    def trading_day(self, now: datetime) -> date:
        start = self.last_reset(now).astimezone(self.zone).date()
        return start + timedelta(days=1) if self.reset >= _NOON else start

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Trading day ``day`` as the half-open UTC interval ``[start, end)`` between two resets: an instant belongs
        to it exactly when ``trading_day(instant) == day``, but testing many instants costs two comparisons each."""
        first = day - timedelta(days=1) if self.reset >= _NOON else day
        return (local_instant(first, self.reset, self.zone),
                local_instant(first + timedelta(days=1), self.reset, self.zone))


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """When positions and working orders are allowed: from ``start`` to ``close`` on each listed opening day.

    ``close`` is the flatten time (``flattenAt``, else ``end``); a close at or before the start means the window runs
    overnight into the next day. ``end`` is kept only to tell "flatten time reached" from "outside the session".
    """

    zone: ZoneInfo
    start: time
    close: time
    end: time
    days: frozenset[int]
    """Weekday numbers (Monday 0) on which a window opens."""

    @classmethod
    def build(
        cls, zone: ZoneInfo, start: time, end: time, flatten_at: time | None, days: Iterable[str]
    ) -> SessionWindow:
        numbers = frozenset(WEEKDAY_NAMES.index(day) for day in days)
        if not numbers:
            raise ValueError("a trading session needs at least one opening day")
        return cls(zone, start, flatten_at or end, end, numbers)

    def _span(self, day: date, until: time) -> tuple[datetime, datetime]:
        closes_next_day = until <= self.start
        return (
            local_instant(day, self.start, self.zone),
            local_instant(day + timedelta(days=1) if closes_next_day else day, until, self.zone),
        )

    def _windows(self, now: datetime, first: int, last: int, until: time) -> Iterator[tuple[datetime, datetime]]:
        local_day = now.astimezone(self.zone).date()
        for offset in range(first, last + 1):
            day = local_day + timedelta(days=offset)
            if day.weekday() in self.days:
                yield self._span(day, until)

    def is_open(self, now: datetime) -> bool:
        """Inside a window (before its flatten time)?"""
        now = require_aware(now)
        return any(opens <= now < closes for opens, closes in self._windows(now, -1, 0, self.close))

    def in_flatten_period(self, now: datetime) -> bool:
        """Past the flatten time but before the session's end (only when ``flattenAt`` is earlier than ``end``)."""
        now = require_aware(now)
        return any(opens <= now < ends for opens, ends in self._windows(now, -1, 0, self.end)) and not self.is_open(now)

    def next_open(self, now: datetime) -> datetime:
        """The first window opening strictly after ``now`` (days are never empty, so one is always within a week)."""
        now = require_aware(now)
        return min(opens for opens, _ in self._windows(now, 0, 8, self.close) if opens > now)


CME_GLOBEX = SessionWindow.build(ZoneInfo("America/Chicago"), time(17, 0), time(16, 0), None,
                                 ("Sun", "Mon", "Tue", "Wed", "Thu"))
"""When the CME Globex futures the Gateway lists (equity index, energy, metals) trade: Sunday 17:00 to Friday 16:00
Chicago time, halted 16:00-17:00 every day; as one window per opening day, from 17:00 to 16:00 the next day.
``CME_GLOBEX.is_open(instant)`` answers "is the market open at this instant" and ``next_open`` when it opens again.
Why it lives here: it is the same week-and-zone arithmetic as the risk rules' trading session (DST included). Not
known: exchange holidays and the shorter breaks of some products (grains); there the market looks open."""
