"""``python -m engine token keygen|clear``: manage the encrypted token store.

Why: encrypted token storage needs an AES-256 key that the operator creates once and keeps outside the config
(an environment variable, or the OS keyring); ``keygen`` prints one with the line to export it. ``clear`` deletes
the stored token (after rotating the API key, or to force a fresh login); it needs no key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.auth.storage import DEFAULT_KEY_ENV, generate_key, remove_token_file, token_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("token", help="manage the stored session token (keygen, clear)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="token_command", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: _usage(parser))

    keygen = commands.add_parser(
        "keygen", help="print a new random AES-256 key (base64, on stdout) and how to export it (on stderr)"
    )
    keygen.add_argument("--config", type=Path, default=None,
                        help="config file whose authentication.storage.keyEnv names the variable")
    keygen.set_defaults(handler=run_keygen)

    clear = commands.add_parser("clear", help="delete the stored token file (forces a fresh login)")
    clear.add_argument("--config", type=Path, default=None, help="config file (authentication.storage.path)")
    clear.add_argument("--path", type=Path, default=None, help="token file to delete (overrides the config)")
    clear.set_defaults(handler=run_clear)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load(config: Path | None) -> Any:
    """The engine settings, or None after printing the configuration problems (exit code 2)."""
    from settings import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        print(f"configuration error in {config or 'defaults'}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def run_keygen(args: argparse.Namespace) -> int:
    key_env = DEFAULT_KEY_ENV
    if args.config is not None:
        settings = _load(args.config)
        if settings is None:
            return 2
        key_env = settings.authentication.storage.key_env
    key = generate_key()
    print(key)  # alone on stdout, so `export VAR=$(python -m engine token keygen)` works
    print(
        f"\n# Keep this key secret. Export it before starting the engine (or put it in your secret manager):\n"
        f"export {key_env}='{key}'\n"
        f"# A new key makes an existing token file unreadable: the engine then simply logs in again.",
        file=sys.stderr,
    )
    return 0


def run_clear(args: argparse.Namespace) -> int:
    if args.path is not None:
        path = args.path.expanduser()
    else:
        settings = _load(args.config)
        if settings is None:
            return 2
        if settings.authentication.storage.type == "memory":
            print("token storage is 'memory': nothing is stored on disk")
            return 0
        path = token_path(settings)
    if remove_token_file(path):
        print(f"removed the stored token {path}")
    else:
        print(f"no stored token at {path}")
    return 0
