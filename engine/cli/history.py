"""``python -m engine history``: print the store's journal (orders, fills, enforcement, reconcile, connection, ...).

Read-only: it opens the store without migrating, so looking at the journal never creates or changes a database,
and says so plainly when there is no database yet. A readable table by default, ``--json`` for tools.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import trio

from engine.cli.config import add_config_arguments, report_config_error, settings_from_args
from engine.store import HISTORY_KINDS, Store, StoreError, StoreNotFoundError
from engine.store.connect import masked, normalize_url
from settings import ConfigError

CLI_KINDS = ("orders", "fills", "enforcement", "reconcile", "connection", "transitions", "pnl")


def parse_since(text: str) -> datetime:
    """An ISO date or datetime; without a timezone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {text!r} is not an ISO date or datetime (e.g. 2025-01-31 or 2025-01-31T14:00:00+00:00)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=json_default, indent=2, sort_keys=False)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, dict | list):
        return json.dumps(value, default=json_default, separators=(",", ":"))
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain fixed-width table (no colours, so it reads the same in a pipe, a log or a test)."""
    if columns is None:
        columns = list(rows[0]) if rows else []
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells)
    return "\n".join(lines)


def open_for_reading(args: argparse.Namespace) -> Store | int:
    """The store named by the configuration, opened read-only; or the exit code after printing why not."""
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    try:
        return Store.from_settings(settings, migrate_schema=False)
    except StoreNotFoundError as exc:
        print(f"{exc}\n(database.url = {masked(normalize_url(settings.database.url))})", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"cannot read the store: {exc}", file=sys.stderr)
        return 1


def _history(args: argparse.Namespace) -> int:
    store = open_for_reading(args)
    if isinstance(store, int):
        return store
    try:
        rows = trio.run(partial(store.history, args.kind, args.since, limit=args.limit))
    except StoreError as exc:
        print(f"cannot read the store: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        sys.stdout.write(to_json(rows) + "\n")
    elif not rows:
        since = f" since {args.since.isoformat()}" if args.since else ""
        print(f"no {args.kind} recorded{since}")
    else:
        print(format_table(rows))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    assert set(CLI_KINDS) == set(HISTORY_KINDS)
    parser = subparsers.add_parser(
        "history",
        help="print the journal recorded in the store",
        description="Print journal rows oldest first: order intents (orders), fills, enforcement actions, "
        "reconciliation findings (reconcile), connection/breaker/token events (connection), order-machine "
        "transitions (transitions) or daily unrealized P&L snapshots (pnl).",
    )
    parser.add_argument("--kind", choices=CLI_KINDS, default="orders", help="what to print (default: orders)")
    parser.add_argument("--since", type=parse_since, default=None, metavar="ISO",
                        help="only rows at or after this instant (ISO date or datetime; UTC if no offset)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_config_arguments(parser)
    parser.set_defaults(handler=_history)
