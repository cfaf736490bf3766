"""Command groups of ``python -m engine``.

Every public module here defines ``register(subparsers: argparse._SubParsersAction) -> None`` which adds its
command(s) and sets ``handler=`` (a callable taking the parsed ``argparse.Namespace`` and returning the exit code)
with ``parser.set_defaults(handler=...)``. Exit codes: 0 success, 1 a failed check, 2 bad usage or configuration.
"""
