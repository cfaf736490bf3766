"""Benchmarks run by ``python -m engine bench [NAME] [--json FILE]``.

Why a package of modules: each benchmark is its own module here, found by name, so adding one never means editing
the dispatcher (:mod:`engine.cli.bench`) or anyone else's benchmark.

The contract of a benchmark module ``engine/bench/<name>.py``:

- a module docstring whose first line says what it measures (shown by ``bench --list``);
- ``run() -> dict[str, Any]``: runs the benchmark with its default (full) parameters and returns JSON-serialisable
  figures. Two keys are conventional: ``"passed"`` (bool: did it meet its target; ``bench`` exits 1 if any is False)
  and ``"notes"`` (list of strings: how it was measured, caveats). Everything else is a figure, printed as
  ``name.key = value`` and written as is to the ``--json`` file.

Modules whose name starts with ``_`` are helpers, not benchmarks.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def available() -> list[str]:
    """Names of the benchmark modules, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    """Import benchmark ``name``; ``KeyError`` naming the known benchmarks if there is none by that name."""
    if name not in available():
        raise KeyError(f"no benchmark named {name!r}; known: {', '.join(available()) or 'none'}")
    return importlib.import_module(f"{__name__}.{name}")


def summary(module: ModuleType) -> str:
    """The first line of a benchmark's docstring."""
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
