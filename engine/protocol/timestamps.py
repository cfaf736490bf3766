"""Gateway timestamps: one reading of ISO-8601 text for the whole engine, and the Gateway's way of writing one.

Why one rule: the same instant reaches the engine from the stream, from REST searches and from the simulator, and the
mirror compares them (an order from Order/search must equal the same order from the stream). The Gateway writes
``+00:00`` offsets with 6 or 7 fractional digits, sometimes ``Z``, sometimes no zone at all
(docs/projectx-gateway.md §2). So:

* RFC 3339 text (the usual case) is read by msgspec's compiled parser; digits beyond the microsecond are **rounded**
  to the nearest microsecond, half up (``.4962794`` -> ``.496279``, ``.4962795`` -> ``.496280``). The stream records
  (:mod:`engine.protocol.records`) read their timestamps with the same parser, so this function and them agree.
* Anything else ISO-8601 allows (naive text, taken as UTC; a comma before the fraction; surrounding blanks; ``z``)
  is normalised in Python to the same rule. A property test holds the two paths equal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from pydantic import BeforeValidator, PlainSerializer

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
"""The msgspec type of a timestamp field: RFC 3339 with a zone. Text without one is left to :func:`parse_timestamp`
(msgspec would read it as a naive datetime, the engine takes it as UTC)."""

_FRACTION = re.compile(r"[.,](\d{1,6})(\d?)\d*")
_ONE_MICROSECOND = timedelta(microseconds=1)


def parse_timestamp(value: Any) -> Any:
    """An aware datetime from ISO-8601 text (``+00:00``, ``Z``, other offsets, naive taken as UTC; fractional digits
    beyond the microsecond rounded half up); a datetime is made aware the same way; any other value is returned as
    it is, for the validator that follows to refuse.

    Hot path (every pydantic-validated payload with a timestamp): msgspec reads RFC 3339 (~0.2 us); only text it
    refuses goes through :func:`_parse_normalised` (strip, ``z``, the fraction regex: a few us)."""
    if isinstance(value, str):
        try:
            return msgspec.convert(value, AwareDatetime, strict=True)
        except msgspec.ValidationError:
            return _parse_normalised(value)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value


def _parse_normalised(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    round_up = False
    match = _FRACTION.search(text)
    if match is not None:
        round_up = match.group(2) >= "5"
        text = f"{text[:match.start()]}.{match.group(1)}{text[match.end():]}"
    try:
        parsed = datetime.fromisoformat(text)
        if round_up:
            parsed += _ONE_MICROSECOND
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_timestamp(value: datetime) -> str:
    """The Gateway's style: ``2025-07-18T21:00:01.268009+00:00``. An instant whose UTC date is outside years 1-9999
    (``0001-01-01T00:00:00+01:00`` reads fine but has no UTC date) keeps its own offset: written, never a crash."""
    try:
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:
        return value.isoformat(timespec="microseconds")


Timestamp = Annotated[
    datetime, BeforeValidator(parse_timestamp), PlainSerializer(format_timestamp, return_type=str, when_used="json")
]
"""A timestamp field of a pydantic model: read by :func:`parse_timestamp`, written in the Gateway's style in JSON."""
