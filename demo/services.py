"""`seed_demo`: a realistic registry to explore, made the same way every time.

Synthetic posts and leads (demo.data, fixed seed) are written as
dataset files; every recipe is trained globally and for the demo client by the demo data
scientist, then approved and deployed by the demo reviewer, all through the services.
Running it again changes nothing: models that already have a production version are left
alone, the dataset files have the same bytes (and so the same hash), and the demo API key
is kept in a file beside the data and reused while it is valid.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.errors import ApplicationError
from demo import data as demo_data
from mlregistry import selectors, services
from mlregistry.models import MLModelVersion, Status
from predictions import selectors as prediction_selectors
from predictions import services as prediction_services
from predictions.models import SCOPES
from training import services as training_services

DEMO_SEED = demo_data.DEFAULT_SEED
# Training seed of the demo models (the default of settings.TRAINING_SEED).
DEMO_TRAINING_SEED = 42
DEMO_CLIENT = demo_data.BIG_CLIENT
DEMO_PASSWORD = "pulselytics-demo"
DEMO_API_KEY_NAME = "demo-client"
# (username, groups, role shown to the operator)
DEMO_USERS = [
    ("dana", ["Data scientists"], "data scientist: trains and registers"),
    ("rita", ["Reviewers"], "reviewer: approves or rejects"),
    # Approving and deploying are separate duties (docs/registry.md#four-eyes), as at a bank.
    ("dev", ["Deployers"], "deployer: deploys, runs A/B tests, rolls back"),
]
# A newer engagement-likes, trained on a later batch of posts and left in `testing` so a
# reviewer can try the approval workflow in the admin.
DEMO_CANDIDATE = ("engagement-likes", "posts-recent.csv")
# recipe -> dataset file it trains on
DEMO_RECIPES = {
    "engagement-likes": "posts.csv",
    "engagement-comments": "posts.csv",
    "engagement-anomaly": "posts.csv",
    "lead-conversion": "leads.csv",
}


class DemoRefusedError(ApplicationError):
    code = "demo_refused"
    http_status = 409


class DemoInstanceNotFoundError(ApplicationError):
    """The settings point at no demo instance: another PULSELYTICS_VAR_DIR or DATABASE_URL
    than the server's, or a database never migrated."""

    code = "instance_not_found"
    http_status = 503


# Told with every refusal: the usual cause is a terminal without the server's variables.
_SAME_SETTINGS = ("run it with the server's PULSELYTICS_VAR_DIR and DATABASE_URL (as the "
                  "command `make run` printed does)")


@dataclass
class DemoSummary:
    users: list[tuple[str, str]] = field(default_factory=list)
    password: str = DEMO_PASSWORD
    api_key: str = ""
    deployed: list[str] = field(default_factory=list)
    already_live: list[str] = field(default_factory=list)
    candidate: str = ""


def _demo_user(username: str, groups: list[str]):
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "email": f"{username}@demo.pulselytics"}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        user.groups.set(Group.objects.filter(name__in=groups))
    return user


def _write_datasets(data_dir: Path) -> dict[str, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    frames = {"posts.csv": demo_data.demo_posts(seed=DEMO_SEED),
              "leads.csv": demo_data.demo_leads(seed=DEMO_SEED),
              DEMO_CANDIDATE[1]: demo_data.demo_posts(seed=DEMO_SEED + 1)}
    paths = {}
    for name, frame in frames.items():
        paths[name] = data_dir / name
        frame.to_csv(paths[name], index=False)
    return paths


def demo_api_key_read() -> str:
    """The key seed_demo wrote for this instance (settings.VAR_DIR, as the server has it)."""
    key_file = Path(settings.VAR_DIR) / "demo" / "api-key"
    if not key_file.exists():
        raise DemoInstanceNotFoundError(f"no demo API key in {key_file}: give --key, or "
                                        f"{_SAME_SETTINGS}")
    return key_file.read_text().strip()


def demo_database_check() -> None:
    """Refuse a database without the project's tables before anything reads it; a missing
    SQLite file is not created (connecting would create an empty one)."""
    database = connection.settings_dict
    if database["ENGINE"] == "django.db.backends.sqlite3":
        where = database["NAME"]
        if where != ":memory:" and not Path(where).exists():
            raise DemoInstanceNotFoundError(f"no database at {where}: {_SAME_SETTINGS}")
    else:
        where = f"database {database['NAME']} on {database['HOST'] or 'localhost'}"
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise DemoInstanceNotFoundError(f"{where} is not migrated: {_SAME_SETTINGS}, or run "
                                        "`manage.py migrate` first")


def _demo_api_key(key_file: Path) -> str:
    """The demo key from its file while it is valid; else a new one (old demo keys revoked)."""
    if key_file.exists():
        key = key_file.read_text().strip()
        if prediction_selectors.api_key_is_valid(key=key):
            return key
    # The simulated traffic posts outcomes too: every scope.
    _, key = prediction_services.api_key_replace(name=DEMO_API_KEY_NAME, scopes=SCOPES)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    return key


def _put_live(candidate: MLModelVersion, reviewer, deployer) -> None:
    failed = selectors.failed_gates(candidate)
    justification = ("demo data: the gate result is shown in the admin for illustration"
                     if failed else "")
    services.model_version_approve(version=candidate, user=reviewer,
                                   notes="demo: metrics and fairness reviewed",
                                   override_justification=justification)
    services.model_version_deploy(version=candidate, user=deployer, notes="demo deploy")


def demo_seed(*, data_dir: Path | None = None, progress=None) -> DemoSummary:
    if settings.IS_PRODUCTION:
        raise DemoRefusedError("seed_demo does not run with PULSELYTICS_ENV=production")
    data_dir = data_dir or Path(settings.VAR_DIR) / "demo"
    summary = DemoSummary()
    users = {name: _demo_user(name, groups) for name, groups, _ in DEMO_USERS}
    summary.users = [(name, role) for name, _, role in DEMO_USERS]
    scientist, reviewer, deployer = users["dana"], users["rita"], users["dev"]
    files = _write_datasets(data_dir)
    for recipe_name, file_name in DEMO_RECIPES.items():
        for client_id in ("", DEMO_CLIENT):
            model_name = training_services.client_model_name(recipe_name, client_id)
            live = MLModelVersion.objects.filter(model__name=model_name, status=Status.PRODUCTION)
            if live.exists():
                summary.already_live.append(model_name)
                continue
            candidate = (
                MLModelVersion.objects.filter(model__name=model_name, status=Status.TESTING)
                .order_by("-created_at").first()
                or training_services.model_train(
                    recipe_name=recipe_name, user=scientist, data_path=files[file_name],
                    client_id=client_id, seed=DEMO_TRAINING_SEED, progress=progress,
                )
            )
            _put_live(candidate, reviewer, deployer)
            summary.deployed.append(f"{model_name} {candidate.version}")
    summary.candidate = _demo_candidate(scientist, files[DEMO_CANDIDATE[1]], progress)
    summary.api_key = _demo_api_key(data_dir / "api-key")
    return summary


def _demo_candidate(scientist, data_path: Path, progress) -> str:
    """The candidate awaiting review: trained once, while its model has only the version
    the demo deployed (once someone reviews it, later runs leave the model alone)."""
    model_name = DEMO_CANDIDATE[0]
    versions = MLModelVersion.objects.filter(model__name=model_name)
    waiting = versions.filter(status=Status.TESTING).order_by("-created_at").first()
    if waiting is None and versions.count() == 1:
        waiting = training_services.model_train(
            recipe_name=model_name, user=scientist, data_path=data_path,
            seed=DEMO_TRAINING_SEED, progress=progress,
        )
    return f"{model_name} {waiting.version}" if waiting else ""
