"""``python -m engine bench [NAME] [--json FILE] [--list]``: run the benchmarks in :mod:`engine.bench`.

Why a dispatcher: benchmarks are modules that colleagues add independently; this command finds them by name, runs
one (or all, without NAME), prints every figure and optionally writes them as JSON for CI or a README table. Exit
code 1 if a benchmark reports ``passed: false``, 2 for an unknown name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from engine import bench


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run benchmarks (engine/bench/*.py)", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default=None, help="benchmark to run (default: all); see --list")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.set_defaults(handler=run)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in bench.available():
            print(f"{name:20} {bench.summary(bench.load(name))}")
        return 0
    names = [args.name] if args.name else bench.available()
    try:
        modules = {name: bench.load(name) for name in names}
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name, module in modules.items():
        print(f"== {name}: {bench.summary(module)}", flush=True)
        started = time.perf_counter()
        result: dict[str, Any] = module.run()
        result.setdefault("bench_wall_time_s", round(time.perf_counter() - started, 3))
        results[name] = result
        for key, value in result.items():
            if key == "notes":
                for note in value:
                    print(f"   note: {note}")
            else:
                print(f"   {name}.{key} = {_format(value)}")
        if result.get("passed") is False:
            failed = True
            print(f"   {name}: TARGET MISSED", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failed else 0
