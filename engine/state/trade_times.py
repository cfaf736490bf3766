"""A time index of one account's trades held in full by the mirror: those made at or after an instant, in arrival
order, for the cost of the ones returned instead of a pass over the thousands held.

Why two parts: trades arrive almost always in time order, so almost all go to ``_ordered``, a deque in both arrival
and time order, where adding one and forgetting the oldest (the mirror forgets in arrival order) cost O(1), even at
the 10,000 held (one sorted list paid a memmove of all its entries for every trade forgotten: several microseconds
on the event path). The few out of time order (a reconciliation's late ones, a trade replaced with a new timestamp)
go to ``_late``, a sorted list, short in practice. Each entry is ``(creation time, trade id, arrival number)``: the
id breaks ties of time and finds an entry again from its trade; the arrival number restores the mirror's order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from datetime import datetime
from itertools import islice
from operator import itemgetter

Entry = tuple[datetime, int, int]
"""(creation time, trade id, arrival number)."""

_TIME = itemgetter(0)
_TIME_ID = itemgetter(0, 1)
_ARRIVAL = itemgetter(2)


class TradeTimes:
    """See the module docstring. Trade ids are unique; each new trade's arrival number is the greatest yet."""

    __slots__ = ("_late", "_ordered")

    def __init__(self) -> None:
        self._ordered: deque[Entry] = deque()
        """Entries in arrival order that are also in time order: the usual trade."""
        self._late: list[Entry] = []
        """The others, sorted by (time, id)."""

    def __len__(self) -> int:
        return len(self._ordered) + len(self._late)

    def add(self, at: datetime, trade_id: int, arrival: int) -> None:
        """A new trade: ``arrival`` greater than every arrival number indexed."""
        ordered = self._ordered
        if ordered:
            last = ordered[-1]
            if at < last[0] or (at == last[0] and trade_id < last[1]):
                insort(self._late, (at, trade_id, arrival))
                return
        ordered.append((at, trade_id, arrival))

    def moved(self, before: datetime, at: datetime, trade_id: int) -> None:
        """The trade indexed at ``before`` is now at ``at`` (replaced with a new timestamp): same arrival number."""
        insort(self._late, (at, trade_id, self.remove(before, trade_id)))

    def remove(self, at: datetime, trade_id: int) -> int:
        """Forget the trade's entry (``at`` its time as indexed); returns its arrival number."""
        ordered = self._ordered
        if ordered and ordered[0][1] == trade_id:  # the oldest arrival: what the mirror forgets first
            return ordered.popleft()[2]
        for part in (self._late, ordered):  # ordered: only a replaced trade leaves from the middle
            at_index = bisect_left(part, (at, trade_id), key=_TIME_ID)
            if at_index < len(part) and part[at_index][1] == trade_id:
                entry = part[at_index]
                del part[at_index]
                return entry[2]
        raise KeyError(f"trade {trade_id} at {at.isoformat()} is not in the time index")

    def since(self, start: datetime) -> list[Entry]:
        """The entries made at or after ``start``, in arrival order: O(log n + k), O(k log k) with late ones."""
        ordered = self._ordered
        count = len(ordered) - bisect_left(ordered, start, key=_TIME)
        found = list(islice(reversed(ordered), count))
        found.reverse()
        late = self._late
        if late:
            first = bisect_left(late, start, key=_TIME)
            if first < len(late):
                found.extend(late[first:])
                found.sort(key=_ARRIVAL)
        return found
