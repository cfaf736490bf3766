"""The committed statecharts match the machines, and ``--check`` notices when they do not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.__main__ import main
from engine.cli.statecharts import DEFAULT_OUT, mermaid_markdown
from machines import CHARTS


def test_committed_statecharts_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "statecharts", "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_check_names_stale_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in DEFAULT_OUT.glob("*.md"):
        shutil.copy(path, tmp_path / path.name)
    for name in CHARTS:
        (tmp_path / f"{name}.svg").write_text("<svg/>", encoding="utf-8")
    assert main(["statecharts", "--out", str(tmp_path), "--check"]) == 0

    order_md = tmp_path / "order.md"
    order_md.write_text(order_md.read_text(encoding="utf-8").replace("Cancel failed", "Cancel fails"), encoding="utf-8")
    (tmp_path / "token.svg").unlink()
    capsys.readouterr()
    assert main(["statecharts", "--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "order.md" in err and "token.svg" in err
    assert "breaker.md" not in err and "connection.md" not in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed")
def test_generation_writes_svg_and_mermaid_for_every_machine(tmp_path: Path) -> None:
    assert main(["statecharts", "--out", str(tmp_path)]) == 0
    for name, chart in CHARTS.items():
        assert (tmp_path / f"{name}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
        md = (tmp_path / f"{name}.md").read_text(encoding="utf-8")
        assert md == mermaid_markdown(name, chart)
        assert "```mermaid\nstateDiagram-v2" in md
        for state in chart.states:
            assert f" as {state.id}" in md
    assert main(["statecharts", "--out", str(tmp_path), "--check"]) == 0
