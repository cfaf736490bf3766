"""``python -m engine state``: print the last mirrored state (accounts, positions, orders) saved in the store.

What an operator checks after a crash or before a restart: the engine's view of each account as last saved, with
the Gateway's field names. Read-only, like ``history``; ``--json`` prints ``{"accounts", "positions", "orders"}``.
"""

from __future__ import annotations

import argparse
import sys

import trio

from engine.cli.config import add_config_arguments
from engine.cli.history import cell, format_table, open_for_reading, to_json
from engine.store import StoreError

ACCOUNT_COLUMNS = ("id", "name", "balance", "canTrade", "isVisible", "simulated")
POSITION_COLUMNS = ("accountId", "id", "contractId", "type", "size", "averagePrice", "creationTimestamp")
ORDER_COLUMNS = (
    "accountId", "id", "contractId", "status", "type", "side", "size",
    "limitPrice", "stopPrice", "fillVolume", "filledPrice", "customTag", "updateTimestamp",
)  # fmt: skip


def _state(args: argparse.Namespace) -> int:
    store = open_for_reading(args)
    if isinstance(store, int):
        return store
    try:
        saved = trio.run(store.load_state)
    except StoreError as exc:
        print(f"cannot read the store: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        sys.stdout.write(to_json(saved.as_gateway_dict()) + "\n")
        return 0
    if saved.saved_at is None:
        print("no mirrored state saved yet")
        return 0
    print(f"mirrored state saved at {cell(saved.saved_at)}")
    for title, rows, columns in (
        ("accounts", saved.accounts, ACCOUNT_COLUMNS),
        ("positions", saved.positions, POSITION_COLUMNS),
        ("orders", saved.orders, ORDER_COLUMNS),
    ):
        print(f"\n{title} ({len(rows)})")
        if rows:
            extra = [key for row in rows for key in row if key not in columns]
            print(format_table(rows, [*columns, *dict.fromkeys(extra)]))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "state",
        help="print the last mirrored state saved in the store",
        description="Print the accounts, positions and orders the engine last saved (Gateway field names).",
    )
    parser.add_argument("--json", action="store_true",
                        help='print {"accounts": [...], "positions": [...], "orders": [...]} as JSON')
    add_config_arguments(parser)
    parser.set_defaults(handler=_state)
