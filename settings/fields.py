"""Reusable field types for the configuration models, each carrying its own sanity check.

Every check lives on a type instead of being repeated per field, so "a timeout must be positive" is written once and
every millisecond timeout in the file gets it. Validators raise ``ValueError("expected ...")``: the text after
"expected" becomes the second half of the one-line error the operator sees (see :mod:`settings.errors`).
"""

from __future__ import annotations

import itertools
import math
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

#: Lifetime of a ProjectX session token (24 h). The refresh buffer must be shorter, or the engine would refresh forever.
TOKEN_LIFETIME_SECONDS = 86_400

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode turns YAML `true` into 1; a boolean where a number belongs is always a mistake here.
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    return value


def _non_decreasing(values: list[int]) -> list[int]:
    if not values:
        raise ValueError("expected a non-empty list of delays in milliseconds")
    for earlier, later in itertools.pairwise(values):
        if later < earlier:
            raise ValueError(f"expected delays that never decrease ({later} follows {earlier})")
    return values


def _non_empty(values: list[int]) -> list[int]:
    if not values:
        raise ValueError("expected a non-empty list")
    return values


def _http_url(value: str) -> str:
    return _checked_url(value, ("http", "https"))


def _hub_url(value: str) -> str:
    return _checked_url(value, ("http", "https", "ws", "wss"))


def _checked_url(value: str, schemes: tuple[str, ...]) -> str:
    expected = f"expected an absolute {'/'.join(schemes)} URL such as https://host/path"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme.lower() not in schemes or not parts.hostname or " " in value:
        raise ValueError(expected)
    if parts.query or parts.fragment:
        raise ValueError(f"{expected} (no query string or fragment)")
    del port
    return value


_DB_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_SQLITE_HOME = "sqlite:///~"


def _database_url(value: str) -> str:
    if not _DB_URL.match(value):
        raise ValueError("expected a SQLAlchemy database URL such as sqlite:///path/to/engine.db")
    if value.startswith(_SQLITE_HOME):
        # `sqlite:///~/x.db` means a file under the home directory, as `~` does everywhere else in this file.
        return "sqlite:///" + str(Path(value[len("sqlite:///") :]).expanduser())
    return value


def _expand_user(value: Path) -> Path:
    return value.expanduser()


def _log_level(value: Any) -> Any:
    if isinstance(value, str) and value.upper() in LOG_LEVELS:
        return value.upper()
    raise ValueError(f"expected a log level, one of {', '.join(LOG_LEVELS)}")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("expected an environment variable name (letters, digits, underscores)")
    return value


def _refresh_buffer(value: int) -> int:
    if value >= TOKEN_LIFETIME_SECONDS:
        raise ValueError(f"expected fewer seconds than the token lifetime ({TOKEN_LIFETIME_SECONDS} s)")
    return value


def _status_code(value: int) -> int:
    if not 100 <= value <= 599:
        raise ValueError("expected an HTTP status code (100-599)")
    return value


def _unique_positive_ids(values: list[int]) -> list[int]:
    if not values:
        raise ValueError("expected at least one account id (leave the key out to watch every active account)")
    if len(set(values)) != len(values):
        raise ValueError("expected each account id once")
    return values


_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _time_of_day(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        hint = f'{value // 60:02d}:{value % 60:02d}'
        raise ValueError(f'expected a time of day in quotes, "{hint}" (YAML reads an unquoted {hint} as a number)')
    if isinstance(value, str):
        match = _TIME_OF_DAY.match(value.strip())
        if match:
            return f"{int(match.group(1)):02d}:{match.group(2)}"
    raise ValueError('expected a time of day "HH:MM" (24-hour clock, in quotes)')


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as America/Chicago") from None
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _unique_days(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("expected at least one day (disable the rule instead)")
    if len(set(values)) != len(values):
        raise ValueError("expected each day once")
    return values


_SYMBOL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _symbol_limits(values: dict[str, int]) -> dict[str, int]:
    for key in values:
        if not _SYMBOL_KEY.match(key):
            raise ValueError(f"expected symbol keys such as MNQ, F.US.MNQ or CON.F.US.MNQ.U25, got {key!r}")
    return values


_Int = Annotated[int, BeforeValidator(_reject_bool)]

PositiveMs = Annotated[_Int, Field(gt=0)]
"""A duration in milliseconds that must be > 0 (timeouts, windows, intervals)."""
NonNegativeMs = Annotated[_Int, Field(ge=0)]
"""A delay in milliseconds where 0 means "immediately"."""
PositiveSeconds = Annotated[_Int, Field(gt=0)]
AtLeastOne = Annotated[_Int, Field(ge=1)]
NonNegativeInt = Annotated[_Int, Field(ge=0)]
Days = Annotated[_Int, Field(ge=1)]
"""A retention period in days; 0 would delete everything at once, so it is refused."""
DelayListMs = Annotated[list[NonNegativeMs], AfterValidator(_non_decreasing)]
"""Back-off delays in ms: non-empty, each >= 0, never decreasing."""
RetryDelaysMs = Annotated[list[NonNegativeMs], AfterValidator(_non_empty)]
RefreshBufferSeconds = Annotated[PositiveSeconds, AfterValidator(_refresh_buffer)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HubUrl = Annotated[str, AfterValidator(_hub_url)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
ExpandedPath = Annotated[Path, AfterValidator(_expand_user)]
LogLevel = Annotated[str, BeforeValidator(_log_level)]
EnvVarName = Annotated[str, AfterValidator(_env_name)]
StatusCode = Annotated[_Int, AfterValidator(_status_code)]
AccountIds = Annotated[list[Annotated[_Int, Field(gt=0)]], AfterValidator(_unique_positive_ids)]
Multiplier = Annotated[float, BeforeValidator(_reject_bool), Field(ge=1)]
Money = Annotated[float, BeforeValidator(_reject_bool), Field(gt=0), AfterValidator(_finite)]
"""An amount in the account's currency that must be > 0 (a loss limit is written as a positive number)."""
TimeOfDay = Annotated[str, BeforeValidator(_time_of_day)]
"""A wall time ``"HH:MM"`` (normalised to two-digit hours) in the risk rules' time zone."""
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
Weekdays = Annotated[list[Weekday], AfterValidator(_unique_days)]
SymbolLimits = Annotated[dict[str, AtLeastOne], AfterValidator(_symbol_limits)]
"""Per-symbol contract limits: a key is a product code (``MNQ``), a symbol id (``F.US.MNQ``) or a contract id."""


def ws_url(url: str) -> str:
    """The websocket form of a hub URL: https -> wss, http -> ws; ws(s) URLs are returned unchanged."""
    scheme, sep, rest = url.partition("://")
    mapped = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme.lower())
    return f"{mapped}{sep}{rest}"
