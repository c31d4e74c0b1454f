"""Real Celery processes for tests about scheduling and background work.

A worker or beat started here is a separate `celery` process on the test's Redis broker,
the test's database (PostgreSQL; the test must be transactional so the process sees its
rows) and the test's artifact folder. Used as context managers so every process is
stopped, however the test ends:

    with celery_worker(redis_server, artifact_dir) as worker:
        ...                       # worker.process is the Popen; worker.log its output
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

START_TIMEOUT = 60
STOP_TIMEOUT = 15


@dataclass
class CeleryProcess:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process and its children (a crash: nothing is acknowledged)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)


def process_env(redis_url: str, artifact_dir: Path, **extra: str) -> dict:
    """The environment of a project process on the test's database, broker and storage."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "ARTIFACT_STORAGE_OPTIONS": json.dumps({"location": str(artifact_dir)}),
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "INFO",
        **extra,
    }


def _start(args: list[str], env: dict, log: Path, ready_text: str) -> CeleryProcess:
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pulselytics", *args],
        cwd=settings.BASE_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill() reaches the pool children
    )
    handle.close()
    started = CeleryProcess(process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while ready_text not in started.output():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(started)
            raise RuntimeError(f"celery {args[0]} did not start:\n{started.output()[-3000:]}")
        time.sleep(0.2)
    return started


def _stop(started: CeleryProcess) -> None:
    if started.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.process.pid, signal.SIGTERM)
        try:
            started.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            started.kill()


@contextlib.contextmanager
def celery_worker(redis_server, artifact_dir: Path, *, name: str = "worker",
                  concurrency: int = 1, **env: str) -> Iterator[CeleryProcess]:
    """A worker (prefork pool) consuming the default queue; yields once it is ready."""
    log = Path(artifact_dir).parent / f"celery-{name}.log"
    worker = _start(
        ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency),
         "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"],
        process_env(redis_server.url, artifact_dir, **env), log, ready_text="ready.",
    )
    try:
        yield worker
    finally:
        _stop(worker)


@contextlib.contextmanager
def celery_beat(redis_server, artifact_dir: Path, **env: str) -> Iterator[CeleryProcess]:
    """Beat with the django-celery-beat DatabaseScheduler, checking rows every second."""
    log = Path(artifact_dir).parent / "celery-beat.log"
    schedule_dir = Path(artifact_dir).parent / "beat"
    schedule_dir.mkdir(exist_ok=True)
    beat = _start(
        ["beat", "--loglevel", "DEBUG", "--max-interval", "1",
         "--schedule", str(schedule_dir / "schedule")],
        process_env(redis_server.url, artifact_dir, **env), log, ready_text="beat: Starting",
    )
    try:
        yield beat
    finally:
        _stop(beat)


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.25):
    """Poll `condition()` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
