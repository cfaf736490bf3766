"""Helpers shared by the settings tests: the seed file and a writer for small YAML files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SEED_CONFIG = Path(__file__).parents[2].parent / "shared/seed/config.yaml"


@pytest.fixture
def seed_config() -> Path:
    assert SEED_CONFIG.is_file(), f"seed config missing at {SEED_CONFIG}"
    return SEED_CONFIG


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        path = tmp_path / f"config-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
