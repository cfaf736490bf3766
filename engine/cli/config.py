"""``python -m engine config check``: validate the configuration and print the effective result, secrets redacted.

It is the operator's dry run: the same loading as start-up (defaults < YAML file < ``ENGINE_*`` environment <
``--set`` flags), so "config check passes" means "start-up will accept this configuration". Problems go to stderr,
one line each, exit code 2; no traceback.

The helpers :func:`add_config_arguments`, :func:`settings_from_args` and :func:`report_config_error` are public so
that every command that needs the configuration (``run``, ...) offers the same ``--config`` / ``--set`` flags and
reports problems the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from settings import ConfigError, EngineSettings, effective_yaml, load_settings

DEFAULT_CONFIG_FILE = Path("config.yaml")
"""Read when ``--config`` is not given and the file exists in the working directory."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"YAML config file (camelCase keys as in the seed); default: ./{DEFAULT_CONFIG_FILE} if it exists",
    )
    parser.add_argument(
        "--set",
        dest="config_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, highest precedence, e.g. --set signalr.reconnection.maxAttempts=3 (repeatable)",
    )


def config_path_from_args(args: argparse.Namespace) -> Path | None:
    explicit: Path | None = getattr(args, "config", None)
    if explicit is not None:
        return explicit
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dotted-key mapping (values parsed as YAML); every bad item named in one error."""
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set api.timeout=5000")
            continue
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            problems.append(f"--set {key.strip()}: the value is not valid YAML")
    if problems:
        raise ConfigError(problems)
    return overrides


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> EngineSettings:
    """The effective settings for parsed arguments of a command that called :func:`add_config_arguments`."""
    overrides = parse_overrides(list(getattr(args, "config_overrides", []) or []))
    return load_settings(config_path_from_args(args), env=os.environ if env is None else env, overrides=overrides)


def report_config_error(exc: ConfigError, stream: TextIO | None = None) -> int:
    """Print one line per problem to stderr and return the exit code for a bad configuration (2)."""
    out = sys.stderr if stream is None else stream
    for problem in exc.problems:
        print(problem, file=out)
    return 2


def _check(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    path = config_path_from_args(args)
    source = f"defaults < {path} < environment" if path is not None else "defaults < environment (no file)"
    if args.config_overrides:
        source += " < --set"
    sys.stdout.write(f"# effective configuration ({source}); secrets redacted\n")
    sys.stdout.write(effective_yaml(settings))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="validate and show the configuration")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate the configuration and print the effective values as YAML (secrets redacted)",
        description="Exit 0 when the configuration is valid, 2 when not (one problem per line on stderr).",
    )
    add_config_arguments(check)
    check.set_defaults(handler=_check)

    def _usage(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=_usage)
