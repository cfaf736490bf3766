from __future__ import annotations

import subprocess
import sys

from engine.__main__ import main


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "engine", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "0.1.0" in done.stdout
