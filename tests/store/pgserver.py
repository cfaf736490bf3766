"""A throwaway PostgreSQL server for the store tests, started by the tests themselves.

Why the tests start it (and CI does not): ``.ci/setup`` cannot export variables to the shell that runs pytest,
and a server started by a setup script outlives or misses the run in ways that are hard to see. So the tests find
Debian's ``initdb``/``pg_ctl`` (package ``postgresql``, installed by ``.ci/setup``), create a cluster in a temporary
directory, start it on 127.0.0.1 on a free port (unix socket in the same directory), and stop it at the end of the
session. When running as root the cluster belongs to the ``postgres`` user (``initdb`` refuses root).

``ENGINE_TEST_PG_URL`` (e.g. ``postgresql://user:pw@127.0.0.1:5432/postgres``) points the tests at an existing
server instead; the tests then create one database on it, and a fresh schema per test. With neither, the
PostgreSQL tests are skipped with a message saying which of the two to provide.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_URL = "ENGINE_TEST_PG_URL"


class PgUnavailable(Exception):
    """No PostgreSQL server could be found or started; the message says why."""


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    admin_url: str  # a URL to the maintenance database, for CREATE/DROP DATABASE
    directory: Path | None = None
    bin_dir: Path | None = None
    run_as: str | None = None

    def url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.directory is None or self.bin_dir is None:
            return
        _run(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"],
             check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def _run(server: PgServer, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if server.run_as:
        argv = ["runuser", "-u", server.run_as, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise PgUnavailable(f"{Path(argv[0] if not server.run_as else argv[3]).name} failed: "
                            f"{(done.stderr or done.stdout).strip()[-500:]}")
    return done


def start() -> PgServer:
    """Use ``$ENGINE_TEST_PG_URL`` or start a private server; raise :class:`PgUnavailable` with the reason."""
    if os.environ.get(ENV_URL):
        return PgServer(admin_url=os.environ[ENV_URL])
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PgUnavailable(
            "no PostgreSQL server binaries (pg_ctl) found: install Debian's 'postgresql' package "
            f"(bash .ci/setup does) or set {ENV_URL} to a server"
        )
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PgUnavailable("running as root and no 'postgres' user exists to own a test cluster") from None
        run_as = "postgres"
    directory = Path(tempfile.mkdtemp(prefix="engine-test-pg-"))
    if run_as:
        shutil.chown(directory, user=run_as)
    port = _free_port()
    server = PgServer(
        admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres", directory=directory, bin_dir=bin_dir,
        run_as=run_as,
    )
    try:
        _run(server, [str(bin_dir / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions"])
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off -c full_page_writes=off"
        _run(server, [str(bin_dir / "pg_ctl"), "-D", str(directory / "data"), "-o", options,
                      "-l", str(directory / "server.log"), "-w", "-t", "30", "start"])
    except (PgUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        log_tail = ""
        log_file = directory / "server.log"
        if log_file.exists():
            log_tail = "\n" + log_file.read_text(errors="replace")[-800:]
        server.stop()
        raise PgUnavailable(f"could not start a private PostgreSQL server: {exc}{log_tail}") from None
    return server
