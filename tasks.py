"""Developer tasks (``invoke --list``).

``invoke test`` is the one command CI runs (see README.md): lint, type-check, then the whole test suite with
coverage. Everything that waits runs in virtual time, so the suite stays well inside its budget on 2 cores.
"""

from __future__ import annotations

import os

from invoke.context import Context
from invoke.tasks import task

PY = "python"


@task
def lint(c: Context) -> None:
    """ruff (lint) and mypy (strict on machines/ and settings/)."""
    c.run(f"{PY} -m ruff check .", pty=False)
    c.run(f"{PY} -m mypy", pty=False)


@task(pre=[lint])
def test(c: Context) -> None:
    """Lint, type-check, then run every test with coverage (the README's test command)."""
    c.run(f"{PY} -m engine statecharts --check", pty=False)
    c.run(f"{PY} -m pytest -q -p no:cacheprovider --cov --cov-report=term --cov-fail-under=90", pty=False)


@task
def props(c: Context) -> None:
    """Property-based tests with the long Hypothesis profile."""
    env = dict(os.environ, HYPOTHESIS_PROFILE="long")
    c.run(f"{PY} -m pytest -q tests -k 'properties or property or fuzz or chaos'", env=env, pty=False)


@task
def statecharts(c: Context) -> None:
    """Regenerate the statechart diagrams (SVG + Mermaid) from machines/."""
    c.run(f"{PY} -m engine statecharts", pty=False)


@task(help={"name": "one benchmark (default: all)", "json": "also write the figures to this JSON file"})
def bench(c: Context, name: str = "", json: str = "") -> None:
    """The benchmarks (python -m engine bench): each prints its figures and whether it met its target."""
    args = " ".join(part for part in (name, f"--json {json}" if json else "") if part)
    c.run(f"{PY} -m engine bench {args}".rstrip(), pty=False)


@task(help={"chaos": "inject every fault kind all along", "duration": "seconds to run (0: until Ctrl-C)"})
def demo(c: Context, chaos: bool = False, duration: int = 0) -> None:
    """The main job: the engine against the built-in simulated Gateway, with the live dashboard."""
    flags = (" --chaos" if chaos else "") + (f" --duration {duration}" if duration else "")
    c.run(f"{PY} -m engine run --simulate{flags}", pty=True)
