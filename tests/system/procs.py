"""Real processes over loopback for the system tests: start ``python -m engine ...``, read its stdout lines with a
deadline, stop it. Plain threads and subprocesses (these tests run in real time, never under a MockClock)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
SIM_USER, SIM_KEY = "sim", "sim-key"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """A ``python -m engine`` subprocess whose stdout lines are collected by a reader thread."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full_env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float = 20.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line containing {text!r} within {timeout_s} s; got {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended before {text!r}; stdout {self.lines}; stderr {self.finish(1)}")
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout_s: float = 30.0) -> str:
        """Wait for the exit, collect the rest of stdout, return stderr."""
        self.popen.wait(timeout=timeout_s)
        assert self.popen.stderr is not None
        self.stderr = self.popen.stderr.read()
        while True:
            try:
                line = self._queue.get(timeout=5.0)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return self.stderr

    def kill(self) -> int:
        """SIGKILL now (a crash: no cleanup, no flush, no shutdown path); the exit status, -9 if it was still alive."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def config_file(tmp_path: Path, base: str) -> Path:
    """An engine configuration for the simulator at ``base``: token in memory, SQLite in ``tmp_path/engine.db``."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "api": {"baseUrl": base, "userHubUrl": f"{base}/hubs/user", "marketHubUrl": f"{base}/hubs/market",
                "timeout": 5000},
        "authentication": {"storage": {"type": "memory"}},
        "database": {"url": f"sqlite:///{tmp_path / 'engine.db'}"},
        "signalr": {"reconnection": {"delays": [200, 500, 1000]}},
        "stateReconciliation": {"minInterval": 300},
    }))
    return path


@contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    """``python -m engine simulate`` on a free loopback port (user ``sim`` / key ``sim-key``); yields its base URL."""
    port = free_port()
    proc = Proc("simulate", "--port", str(port), "--user", SIM_USER, "--api-key", SIM_KEY, *args)
    try:
        proc.wait_for("Serving until Ctrl-C")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def poll(probe: Callable[[], T | None], what: str, timeout_s: float = 20.0, every_s: float = 0.002) -> T:
    """The first non-None answer of ``probe``, asked every ``every_s`` (real time: another process is watched)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(every_s)
