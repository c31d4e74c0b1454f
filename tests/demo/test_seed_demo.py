"""`seed_demo`: every recipe trained on the synthetic data, reviewed and live; idempotent.

Seeding trains nine models (about half a minute), so `seeded` runs `seed_demo` once per
module, inside a transaction that is rolled back when the module ends: each test runs in a
savepoint of it (pytest-django's `db`), sees the seeded registry and rolls back only its
own changes. The demo folder (datasets, API key file) and the artifacts are the module's.
"""

from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from predictions.models import ClientAPIKey
from training.models import TrainingDataset

MODELS = ["engagement-likes", "engagement-comments", "engagement-anomaly", "lead-conversion"]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@dataclass
class Seeded:
    output: str  # what the first `seed_demo` printed
    var_dir: Path
    artifact_dir: Path


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """`seed_demo` run once, in a module-long transaction rolled back at the module's end."""
    var_dir = tmp_path_factory.mktemp("var")
    artifact_root = tmp_path_factory.mktemp("artifacts")
    storages = {**django_settings.STORAGES,
                "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                              "OPTIONS": {"location": str(artifact_root)}}}
    module_transaction = transaction.atomic()
    with django_db_blocker.unblock(), override_settings(VAR_DIR=var_dir, STORAGES=storages):
        module_transaction.__enter__()
        try:
            output = seed()
        except BaseException:
            transaction.set_rollback(True)
            module_transaction.__exit__(None, None, None)
            raise
    yield Seeded(output=output, var_dir=var_dir, artifact_dir=artifact_root)
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        module_transaction.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def artifact_dir(seeded, settings):
    """Overrides tests/conftest.py: the module's artifact folder, the one `seeded` used."""
    settings.STORAGES = {**settings.STORAGES,
                         "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                       "OPTIONS": {"location": str(seeded.artifact_dir)}}}
    return seeded.artifact_dir


@pytest.fixture
def demo_dir(db, seeded, settings):
    """The demo folder of the module's seeded registry (seed_demo has run once)."""
    settings.VAR_DIR = seeded.var_dir
    return seeded.var_dir / "demo"


def counts() -> tuple:
    return (MLModel.objects.count(), MLModelVersion.objects.count(),
            ModelTransition.objects.count(), TrainingDataset.objects.count(),
            get_user_model().objects.count(), ClientAPIKey.objects.count())


def production(name: str) -> MLModelVersion:
    return MLModelVersion.objects.get(model__name=name, status=Status.PRODUCTION)


def test_seed_demo_twice_changes_nothing(demo_dir, seeded):
    first = seeded.output
    after_first = counts()

    second = seed()

    assert counts() == after_first
    assert first.splitlines()[-1] == second.splitlines()[-1]  # the same demo API key
    assert "already live: engagement-likes" in second


def test_seed_demo_puts_every_recipe_live_globally_and_for_the_demo_client(demo_dir, seeded):
    output = seeded.output

    for name in MODELS:
        for model_name in (name, f"{name}--acme-outdoor"):
            version = production(model_name)
            assert version.created_by.username == "dana"
            assert version.approved_by.username == "rita"
            assert version.traffic_percentage == 100
            deployment = version.transitions.get(reason="deployed")
            assert deployment.actor.username == "dev"  # approving and deploying are separate
    key = output.splitlines()[-1].removeprefix("Demo API key: ")
    assert ClientAPIKey.objects.is_valid(key)
    assert (demo_dir / "api-key").read_text().strip() == key


def test_demo_models_learn_the_signal_and_pass_their_gates(demo_dir):
    likes, comments = production("engagement-likes"), production("engagement-comments")
    leads, anomaly = production("lead-conversion"), production("engagement-anomaly")
    # Floors on the held-out validation split, as a reviewer sees them.
    assert likes.metrics["r2"] >= 0.6
    assert 0.2 <= comments.metrics["r2"] < likes.metrics["r2"]
    assert leads.metrics["roc_auc"] >= 0.75
    assert leads.metrics["brier"] < 0.2
    assert anomaly.hyperparameters["detector"] == "isolation_forest"
    assert 0.0 < anomaly.metrics["contamination"] < 0.1
    for version in (likes, comments, leads, anomaly):
        assert all(gate["passed"] for gate in version.gate_results.values()), version
        assert version.override_justification == ""


def test_seed_demo_leaves_one_candidate_awaiting_review(demo_dir, seeded):
    output = seeded.output

    candidate = MLModelVersion.objects.get(model__name="engagement-likes", status=Status.TESTING)
    assert candidate.created_by.username == "dana"
    assert candidate.version != production("engagement-likes").version
    assert f"awaiting review: engagement-likes {candidate.version}" in output


def test_seed_demo_does_not_retrain_the_candidate_once_it_was_reviewed(demo_dir):
    from mlregistry import services

    candidate = MLModelVersion.objects.get(model__name="engagement-likes", status=Status.TESTING)
    services.model_version_reject(version=candidate,
                                  user=get_user_model().objects.get(username="rita"),
                                  notes="not now")

    output = seed()

    assert not MLModelVersion.objects.filter(model__name="engagement-likes",
                                             status=Status.TESTING).exists()
    assert "awaiting review" not in output
