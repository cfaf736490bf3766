"""Real processes over loopback for the system tests: start ``python -m engine ...``, read its stdout lines with a
deadline, stop it. Plain threads and subprocesses (these tests run in real time, never under a MockClock)."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
