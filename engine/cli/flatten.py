"""``python -m engine flatten --account ID``: cancel every working order (Suspended bracket children included), close
every position, and verify the account flat; prints the outcome (JSON with ``--json``).

It runs through the order manager with the enforcement priority (the rate limiter's priority lane), so it is the
same path the risk layer takes. Exit 0 once the account is verified flat (or the outcome is otherwise known), 3 when
flatness could not be verified.
"""

from __future__ import annotations

import argparse

from engine.cli.order import add_session_arguments, run_intent


def _flatten(args: argparse.Namespace) -> int:
    return run_intent(args, lambda manager: manager.flatten(args.account, priority=True))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("flatten", help="cancel all working orders, close all positions, verify flat",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--account", type=int, required=True, help="account id")
    add_session_arguments(parser)
    parser.set_defaults(handler=_flatten)
