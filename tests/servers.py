"""Throwaway PostgreSQL and Redis servers on 127.0.0.1 for the test suite.

Each server lives in its own temp dir, listens on a free loopback port and is stopped when
the test process exits. Binaries come from Debian's packages (`make ci-deps`).
"""

import atexit
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


class ServiceUnavailable(RuntimeError):
    """A server binary is missing; tests that need it skip (or fail under REQUIRE_SERVICES)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_group_stop(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """Stop a server started in its own process group (start_new_session): SIGTERM to it,
    then SIGKILL to the whole group (a gunicorn master and its workers) if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def app_server_env(artifact_dir: Path, **overrides: str) -> dict:
    """The environment of a gunicorn or manage.py process that serves what this test
    process committed: its database, artifacts in `artifact_dir`, no throttling in the way."""
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "ARTIFACT_STORAGE_OPTIONS": json.dumps({"location": str(artifact_dir)}),
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_KEY_THROTTLE_RATE": "1000000/min",
        **overrides,
    }


def postgres_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.realpath(on_path))
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    return None


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb in a temp dir, trust auth) that can be stopped
    and started again on the same port and data directory, as a restart in production."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise ServiceUnavailable("PostgreSQL binaries not found (apt-get install postgresql)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pulselytics-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        subprocess.run(
            _as_postgres_user([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--no-sync"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise

    @property
    def url(self) -> str:
        """The server's `postgres` database, as its superuser."""
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(_as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                          *args]),
                       check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._pg_ctl("-l", str(self.root / "log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait until it is down; `fast` ends every open session, as a restart does."""
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        self._pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> str:
    """Start a server for the rest of the process; return the URL of its `postgres` database."""
    server = PostgresServer()
    atexit.register(server.destroy)
    return server.url


def test_database_url() -> str | None:
    """The PostgreSQL URL the suite runs on, or None for SQLite.

    A URL already in TEST_DATABASE_URL wins (child processes inherit it); otherwise a
    throwaway server is started when the binaries exist.
    """
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    try:
        url = start_postgres()
    except ServiceUnavailable:
        if REQUIRE_SERVICES:
            raise
        return None
    os.environ["TEST_DATABASE_URL"] = url
    return url


class RedisServer:
    """A redis-server on a free port; `stop_serving()` and `start()` restart it on the same
    port (its clients must reconnect), `stop()` ends it for good."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServiceUnavailable("redis-server not found (apt-get install redis-server)")
        self.root = Path(tempfile.mkdtemp(prefix="pulselytics-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start (again) on the same port and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop_serving(self) -> None:
        """Shut the server down (its data is lost: nothing is saved) but keep its port."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def stop(self) -> None:
        self.stop_serving()
        shutil.rmtree(self.root, ignore_errors=True)
