"""The project's own set-up: pinned dependencies, settings per environment, embedded
defaults (SQLite WAL, filesystem broker) and the `make run` supervisor.

Settings are read in a subprocess with a clean environment, because the suite's own
settings (pulselytics.settings.test) replace the database and the broker.
"""

import ast
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from django.core.management import call_command
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pulselytics.settings import settings_module
from scripts.run import Supervisor, instance_command

ROOT = Path(__file__).resolve().parent.parent


def direct_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(line) for line in lines]


def locked_versions() -> dict[str, str]:
    pins = {}
    for raw_line in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with none of the suite's settings: default development set-up."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PULSELYTICS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
    }
    env.update(extra)
    return env


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """PULSELYTICS_ENV=production and no DJANGO_SETTINGS_MODULE: the entry point picks
    pulselytics.settings.production, as on a production host."""
    env = clean_env(tmp_path, PULSELYTICS_ENV="production", **extra)
    del env["DJANGO_SETTINGS_MODULE"]
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_direct_dependencies_are_pinned_exactly():
    for requirement in direct_requirements():
        operators = [spec.operator for spec in requirement.specifier]
        assert operators == ["=="], f"{requirement} is not pinned with =="


def test_direct_dependencies_are_locked_at_their_pinned_version():
    locked = locked_versions()
    for requirement in direct_requirements():
        (pin,) = requirement.specifier
        assert locked.get(canonicalize_name(requirement.name)) == pin.version, (
            f"requirements.lock disagrees with pyproject.toml on {requirement.name}; "
            "run `make lock`"
        )


def test_lock_pins_every_line_exactly():
    for name, version in locked_versions().items():
        assert version, f"requirements.lock: {name} has no == pin"


def test_installed_dependencies_match_the_lock():
    locked = locked_versions()
    for requirement in direct_requirements():
        installed = metadata.version(requirement.name)
        assert installed == locked[canonicalize_name(requirement.name)], (
            f"{requirement.name} {installed} is installed; run `make install` (or `make test`)"
        )


REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "ALLOWED_HOSTS", "AUDIT_HMAC_KEY")


@pytest.mark.parametrize("present", [{}, {"SECRET_KEY": "x" * 60}, {"ALLOWED_HOSTS": "a.example"},
                                     {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "a.example"}])
def test_production_refuses_to_start_without_its_secrets_and_hosts(tmp_path, present):
    env = production_env(tmp_path, **present)
    result = manage("check", env=env)
    missing = [name for name in REQUIRED_IN_PRODUCTION if name not in present]
    assert result.returncode != 0
    assert f"production needs {', '.join(missing)} in the environment" in result.stderr


def test_production_passes_the_deploy_checks(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50),
                         ALLOWED_HOSTS="pulselytics.example",
                         AUDIT_HMAC_KEY=secrets.token_urlsafe(32))
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(("env", "expected"), [
    ({"PULSELYTICS_ENV": "production"}, "pulselytics.settings.production"),
    ({"PULSELYTICS_ENV": "development"}, "pulselytics.settings.base"),
    ({}, "pulselytics.settings.base"),
])
def test_settings_module_follows_pulselytics_env(monkeypatch, env, expected):
    monkeypatch.delenv("PULSELYTICS_ENV", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings_module() == expected


@pytest.mark.parametrize("entry_point", [
    "import pulselytics.celery",
    "import pulselytics.wsgi",
    "from scripts.run import prepare_folders; prepare_folders()",
])
def test_every_entry_point_loads_the_production_settings_under_production(tmp_path,
                                                                         entry_point):
    env = production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50),
                         ALLOWED_HOSTS="pulselytics.example",
                         AUDIT_HMAC_KEY=secrets.token_urlsafe(32))
    result = run_python(f"""
        import os
        {entry_point}
        from django.conf import settings
        print(os.environ["DJANGO_SETTINGS_MODULE"], settings.IS_PRODUCTION,
              settings.SECURE_SSL_REDIRECT)
    """, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pulselytics.settings.production", "True", "True"]


def test_base_settings_refuse_to_run_production(tmp_path):
    # Base alone would serve production over plain HTTP, without the start-up checks.
    env = clean_env(tmp_path, PULSELYTICS_ENV="production",
                    DJANGO_SETTINGS_MODULE="pulselytics.settings.base",
                    SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="pulselytics.example",
                    AUDIT_HMAC_KEY=secrets.token_urlsafe(32))
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "use DJANGO_SETTINGS_MODULE=pulselytics.settings.production" in result.stderr


def test_settings_import_nothing_from_tests():
    # The suite's servers are started by tests/database_plugin.py, never by the settings.
    offenders = []
    for path in sorted((ROOT / "pulselytics" / "settings").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} imports {name}" for name in names
                          if name == "tests" or name.startswith("tests.")]
    assert offenders == []


def test_development_settings_have_debug_off_by_default(tmp_path):
    result = run_python("""
        import django
        django.setup()
        from django.conf import settings
        print(settings.DEBUG, settings.SECURE_SSL_REDIRECT)
    """, clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_default_database_is_sqlite_in_wal_mode(tmp_path):
    result = run_python("""
        import django
        django.setup()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            print(connection.vendor, cursor.fetchone()[0], connection.settings_dict["NAME"])
    """, clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    vendor, journal_mode, name = result.stdout.split()
    assert (vendor, journal_mode) == ("sqlite", "wal")
    assert Path(name) == tmp_path / "pulselytics.sqlite3"


def test_default_broker_is_the_filesystem_transport_with_one_queue_folder(tmp_path):
    result = run_python("""
        import json
        import django
        django.setup()
        from pulselytics.celery import app
        print(json.dumps({"transport": app.connection_for_write().transport.driver_type,
                          "options": app.conf.broker_transport_options}))
    """, clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    options = config["options"]
    assert config["transport"] == "filesystem"
    assert options["data_folder_in"] == options["data_folder_out"]
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        assert Path(options[key]).is_relative_to(tmp_path), key


def test_default_broker_delivers_a_message_to_a_consumer(tmp_path):
    # The folders are created the way `make run` creates them, then a message goes round.
    result = run_python("""
        import django
        django.setup()
        from django.conf import settings
        from pulselytics.celery import app
        from scripts.run import broker_folders
        for folder in broker_folders(settings):
            folder.mkdir(parents=True, exist_ok=True)
        with app.connection_for_write() as connection:
            queue = connection.SimpleQueue("project-check")
            queue.put({"hello": "broker"})
            message = queue.get(timeout=10)
            message.ack()
            print(message.payload["hello"])
    """, clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "broker"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_supervisor_kills_a_service_that_ignores_sigterm_with_its_children():
    supervisor = Supervisor(stop_timeout=1)
    # A parent that ignores SIGTERM (like a worker finishing a long task) and its child.
    supervisor.start("stubborn", ["sh", "-c", "trap '' TERM; sleep 600 & sleep 600; wait"])
    pgid = supervisor.processes["stubborn"].pid
    time.sleep(0.3)
    supervisor.stop()
    assert supervisor.processes["stubborn"].returncode == -signal.SIGKILL
    assert not group_alive(pgid)


def test_run_supervisor_stops_a_well_behaved_service_with_sigterm():
    supervisor = Supervisor(stop_timeout=30)
    supervisor.start("polite", ["sleep", "600"])
    time.sleep(0.2)
    supervisor.stop()
    assert supervisor.processes["polite"].returncode == -signal.SIGTERM


def test_instance_command_repeats_the_variables_that_locate_the_instance():
    command = instance_command("simulate_traffic", "--check", environ={
        "PULSELYTICS_VAR_DIR": "var-8001", "DATABASE_URL": "postgres://u@db/x y",
        "PORT": "8001", "SECRET_KEY": "not repeated"})

    python = Path(sys.executable)
    python = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    assert command == (f"PULSELYTICS_VAR_DIR={ROOT / 'var-8001'} "
                       "DATABASE_URL='postgres://u@db/x y' "
                       f"{python} manage.py simulate_traffic --check")


def test_instance_command_prints_no_password():
    command = instance_command("simulate_traffic", environ={
        "DATABASE_URL": "postgres://u:s3cret@db/x", "CELERY_BROKER_URL": "redis://:pw@r:6379/0"})

    assert "s3cret" not in command and ":pw@" not in command
    assert "postgres://u:PASSWORD@db/x" in command and "redis://:PASSWORD@r:6379/0" in command


def test_instance_command_of_the_default_instance_is_plain():
    command = instance_command("simulate_traffic", environ={"PATH": "/usr/bin"})

    assert command.endswith("python manage.py simulate_traffic")
    assert "=" not in command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # Exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


PROJECT_APPS = ("core", "mlregistry", "training", "monitoring", "predictions", "demo")


def project_command_parsers() -> dict:
    from django.core.management import get_commands, load_command_class

    return {name: load_command_class(app, name).create_parser("manage.py", name)
            for name, app in get_commands().items() if app in PROJECT_APPS}


def test_every_project_command_prints_its_help():
    parsers = project_command_parsers()
    assert {"check_drift", "retrain_if_needed", "simulate_traffic", "model_card"} <= set(parsers)
    for name, parser in parsers.items():
        assert f"manage.py {name}" in parser.format_help()


def test_every_option_of_every_project_command_has_help():
    from django.core.management.base import BaseCommand

    # Django's own options (--verbosity, --settings, ...) are documented by Django.
    django_options = {option for action in BaseCommand().create_parser("manage.py", "x")._actions
                      for option in action.option_strings}
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, parser in sorted(project_command_parsers().items())
               for action in parser._actions
               if not set(action.option_strings) & django_options
               and not (action.help or "").strip()]
    assert missing == []
