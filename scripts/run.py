"""`make run`: migrate, seed the demo, then run the web server, a Celery worker and beat.

Run with the project's venv Python from the project root (the Makefile does both). Every
service starts in its own process group, so one signal reaches it and everything it
forked (gunicorn workers, Celery's pool). Ctrl-C or SIGTERM stops them all: SIGTERM to each
service, then SIGKILL to whatever is still alive after RUN_STOP_TIMEOUT seconds (default 10)
— a second Ctrl-C skips the wait. If one service dies on its own, the others are stopped
too and the exit status is non-zero.

Environment: PORT (default 8000) and everything pulselytics/settings/base.py reads.
"""

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# The variables that say where an instance keeps its data: a command for this instance
# run from another terminal needs them as this process has them.
FILE_EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
INSTANCE_VARIABLES = ("DJANGO_SETTINGS_MODULE", "PULSELYTICS_VAR_DIR", "DATABASE_URL",
                      "CELERY_BROKER_URL", "BROKER_FOLDER")


def log(message: str) -> None:
    print(f"[run] {message}", flush=True)


def broker_folders(settings) -> list[Path]:
    """Folders kombu's filesystem transport needs to exist before a worker starts."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return []
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    keys = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
    return [Path(options[key]) for key in keys if options.get(key)]


def prepare_folders() -> None:
    """Create var/ (SQLite, artifacts, static) and the broker folders the settings name."""
    sys.path.insert(0, str(ROOT))
    from pulselytics.settings import settings_module

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())
    from django.conf import settings

    folders = [Path(settings.VAR_DIR), *broker_folders(settings)]
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and database["NAME"] != ":memory:":
        folders.append(Path(database["NAME"]).parent)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    # Prometheus figures of every gunicorn worker, aggregated by /metrics; fresh each run.
    metrics_dir = Path(settings.VAR_DIR) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def manage(*args: str) -> str:
    """Run a management command; its stdout is returned (stderr, e.g. progress, passes)."""
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True,
                            stdout=subprocess.PIPE, text=True)
    return result.stdout


def _without_password(url: str) -> str:
    """`url` with any password replaced by PASSWORD: the banner is not a place for secrets."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":PASSWORD@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def instance_command(*args: str, environ: dict[str, str]) -> str:
    """A manage.py command line, to paste in another terminal in the checkout, that reaches
    this instance: the instance variables `environ` (the one `make run` was given) sets,
    the var folder made absolute, passwords in URLs left for the reader to fill in."""
    assignments = []
    for name in INSTANCE_VARIABLES:
        value = environ.get(name)
        if value:
            if name == "PULSELYTICS_VAR_DIR":
                value = str((ROOT / value).resolve())
            elif name.endswith("_URL"):
                value = _without_password(value)
            assignments.append(f"{name}={shlex.quote(value)}")
    python = Path(PYTHON)
    python = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    return " ".join([*assignments, shlex.join([str(python), "manage.py", *args])])


def _die_with_parent() -> None:
    # Linux: if this supervisor is killed outright, the service still gets SIGTERM.
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class Supervisor:
    def __init__(self, stop_timeout: float) -> None:
        self.stop_timeout = stop_timeout
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.force = False

    def start(self, name: str, command: list[str]) -> None:
        # The supervisor runs no threads, and PR_SET_PDEATHSIG can only be set in the child.
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - single-threaded supervisor
        )
        log(f"started {name} (pid {self.processes[name].pid}): {' '.join(command)}")

    def on_signal(self, signum, frame) -> None:
        if self.stopping:
            self.force = True
            log("second signal: killing everything now")
            self._signal_all(signal.SIGKILL)
        else:
            log(f"{signal.Signals(signum).name} received, stopping")
            self.stopping = True

    def _signal_all(self, signum: int) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):  # the whole group is gone
                os.killpg(process.pid, signum)

    def _group_alive(self, pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def wait_until_stop(self) -> int:
        """Block until a signal or a service exiting; returns the exit status to use."""
        while not self.stopping:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log(f"{name} exited with status {process.returncode}; stopping the rest")
                    self.stopping = True
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        # SIGTERM to each service's main process, which shuts its own children down in
        # order (gunicorn's workers, Celery's pool); SIGKILL to every process still in
        # any of the groups once the timeout is up.
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while not self.force:
            for process in self.processes.values():
                process.poll()  # reap, so a finished leader no longer counts as alive
            alive = [n for n, p in self.processes.items() if self._group_alive(p.pid)]
            if not alive:
                break
            if time.monotonic() >= deadline:
                log(f"still running after {self.stop_timeout:g}s: {', '.join(alive)}; SIGKILL")
                break
            time.sleep(0.1)
        self._signal_all(signal.SIGKILL)
        for process in self.processes.values():
            process.wait()
        # Killed grandchildren are reaped by init, not by us: give that a moment.
        deadline = time.monotonic() + 5
        while any(self._group_alive(p.pid) for p in self.processes.values()):
            if time.monotonic() >= deadline:
                log("some processes are still exiting")
                return
            time.sleep(0.05)
        log("all services stopped")


# A proxy from the environment must not stand between us and our own loopback server.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for_web(port: int, supervisor: Supervisor, timeout: float = 180) -> bool:
    """Until the app answers /api/v1/health: gunicorn listens before its workers have
    loaded the live models (the warm start), and a request sent then waits for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping:
        if supervisor.processes["web"].poll() is not None:
            return False
        try:
            with _NO_PROXY.open(f"http://{HOST}:{port}/api/v1/health", timeout=5):
                return True
        except OSError:  # refused, not answering yet, or an HTTP error (a subclass)
            time.sleep(0.5)
    return False


def main() -> int:
    # As given, before prepare_folders() adds DJANGO_SETTINGS_MODULE and the like.
    environ = dict(os.environ)
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    supervisor = Supervisor(stop_timeout=float(os.environ.get("RUN_STOP_TIMEOUT", "10")))
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)

    # The embedded instance has no mail server: unless the environment names a mail
    # backend, review requests and alerts are written as files to var/mail/.
    os.environ.setdefault("EMAIL_BACKEND", FILE_EMAIL_BACKEND)
    try:
        prepare_folders()
        manage("migrate", "--no-input")
        log("seeding the demo (trains every recipe on the first run; later runs change nothing)")
        demo_summary = manage("seed_demo")
    except subprocess.CalledProcessError as exc:
        log(f"set-up failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}")
        return 1
    except (ImproperlyConfigured, ImportError, ValueError, OSError) as exc:
        # Settings that refuse to load (e.g. production without keys, a malformed number
        # in the environment) or folders that cannot be created.
        log(f"set-up failed: {exc}")
        return 1
    if supervisor.stopping:
        return 130

    # Static files (the admin's CSS and JS) are served by Django's staticfiles handler
    # wrapped around the WSGI app (scripts/local_wsgi.py), so no collectstatic and no
    # extra dependency; fine on loopback, not a production set-up (see docs/deploy.md).
    supervisor.start("web", [
        str(BIN / "gunicorn"), "local_wsgi:application",
        "--pythonpath", f"{ROOT},{ROOT / 'scripts'}",
        "--bind", f"{HOST}:{port}", "--workers", "2", "--graceful-timeout", "5",
        "--access-logfile", "-", "--no-control-socket",
    ])
    supervisor.start("worker", [
        str(BIN / "celery"), "-A", "pulselytics", "worker", "--loglevel", "INFO",
        "--concurrency", "2", "--hostname", "pulselytics@%h",
    ])
    # Beat reads CELERY_BEAT_SCHEDULER (django_celery_beat's DatabaseScheduler): no
    # schedule file, and no pid file that a killed run would leave behind.
    supervisor.start("beat", [
        str(BIN / "celery"), "-A", "pulselytics", "beat", "--loglevel", "INFO",
    ])

    status = 0
    if wait_for_web(port, supervisor):
        url = f"http://{HOST}:{port}/"
        log(f"Pulselytics is running at {url}")
        log(f"Admin: {url}admin/")
        log(f"Monitoring dashboard: {url}admin/monitoring/dashboard/")
        log(f"API docs: {url}api/docs/  (predict: POST {url}api/v1/models/NAME/predict)")
        traffic = ["simulate_traffic", "--drift", "--check"]
        if port != DEFAULT_PORT:
            traffic += ["--url", url.rstrip("/")]
        log(f"Some traffic for the dashboard (in another terminal, in {ROOT}): "
            + instance_command(*traffic, environ=environ))
        for line in demo_summary.splitlines():
            if not line.startswith(("deployed ", "already live")):
                log(line)
        if os.environ["EMAIL_BACKEND"] == FILE_EMAIL_BACKEND:
            from django.conf import settings

            log(f"E-mails (review requests, alerts) are written to {settings.EMAIL_FILE_PATH}")
        log("Press Ctrl-C to stop the web server, the Celery worker and beat.")
        status = supervisor.wait_until_stop()
    elif not supervisor.stopping:
        log(f"the web server did not answer on {HOST}:{port}")
        status = 1
    supervisor.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
