"""Fixtures of the API tests (tests/predictions/test_api_*.py).

`demo_models` trains the four global recipes ONCE PER MODULE with the real training service
(`model_train`) on small demo data, approves and deploys them, and deletes every row it
made when the module ends. The rows are committed (outside the tests' transactions), so
each test sees them and rolls back only its own changes. Module scope rather than session
scope: committed rows must not be visible to other apps' tests.

Artifact storage: the autouse `artifact_dir` of tests/conftest.py gives every test its own
folder, which would hide the module's trained artifacts; here it is overridden to point at
one folder per module, the one `demo_models` trained into.
"""

import json
from dataclasses import dataclass, field

import numpy
import pandas
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from core.ml.features import model_frame
from demo.data import demo_leads, demo_posts
from mlregistry import artifacts, registration, selectors
from mlregistry import services as registry
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, RegistryGeneration
from predictions import services as serving
from predictions.api import auth
from predictions.loader import model_cache
from predictions.models import SCOPES, PredictionLog
from tests.factories import UserFactory, ensure_governance_groups
from training.models import TrainingDataset
from training.services import model_train

DEMO_POSTS = 1500
DEMO_LEADS = 1500
# recipe -> demo data it trains on
DEMO_RECIPES = {
    "engagement-likes": "posts",
    "engagement-comments": "posts",
    "lead-conversion": "leads",
    "engagement-anomaly": "posts",
}
# The module's own users (not the per-test dana/rita/dev of tests/conftest.py).
PEOPLE = {"user": ("api-dana", "Data scientists"), "reviewer": ("api-rita", "Reviewers"),
          "deployer": ("api-dev", "Deployers")}


def _with_artifacts_at(storages: dict, location) -> dict:
    return {**storages, "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                      "OPTIONS": {"location": str(location)}}}


@pytest.fixture(scope="module")
def artifact_root(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(autouse=True)
def artifact_dir(artifact_root, settings):
    """Overrides tests/conftest.py: one artifact folder per module, shared with demo_models."""
    settings.STORAGES = _with_artifacts_at(settings.STORAGES, artifact_root)
    return artifact_root


@pytest.fixture(autouse=True)
def _fresh_model_cache(settings):
    """The serving cache is process-global, and a rolled-back test resets the registry
    generation it watches: every test starts and ends with an empty cache."""
    settings.REGISTRY_POLL_SECONDS = 0
    model_cache.clear()
    auth._verified.clear()
    yield
    model_cache.clear()
    auth._verified.clear()


def _native(value):
    return value.item() if isinstance(value, numpy.generic) else value


@dataclass
class DemoModels:
    """The module's live demo models and the data they were trained on."""

    versions: dict[str, MLModelVersion]
    frames: dict[str, pandas.DataFrame]
    people: dict
    _estimators: dict = field(default_factory=dict)

    def version(self, name: str) -> MLModelVersion:
        return self.versions[name]

    def schema(self, name: str) -> dict:
        return self.versions[name].feature_schema

    def feature_names(self, name: str) -> list[str]:
        return [f["name"] for f in self.schema(name)["features"]]

    def input_names(self, name: str) -> list[str]:
        return [f["name"] for f in self.schema(name)["features"] if f.get("input", True)]

    def instances(self, name: str, n: int = 1, start: int = 0) -> list[dict]:
        """`n` demo rows as JSON instances (native Python values) for model `name`."""
        frame = self.frames[DEMO_RECIPES[name]]
        rows = frame.iloc[start:start + n][self.feature_names(name)].to_dict("records")
        return [{key: _native(value) for key, value in row.items()} for row in rows]

    def estimator(self, name: str):
        """The production estimator, loaded (and verified) from the artifact store."""
        if name not in self._estimators:
            version = self.versions[name]
            self._estimators[name] = artifacts.bundle_load(
                manifest=version.artifact_manifest, model_sha256=version.model_sha256).estimator
        return self._estimators[name]

    def frame_of(self, name: str, instances: list[dict]) -> pandas.DataFrame:
        """The model's input frame for `instances`, built as training builds it."""
        return model_frame(pandas.DataFrame(instances), self.schema(name))[0]


def _cleanup(*, model_names: list[str], usernames: list[str], generation) -> None:
    """Delete every row the module fixture made (queryset deletes: audit rows refuse
    instance deletes by design)."""
    PredictionLog.objects.filter(model_version__model__name__in=model_names).delete()
    ModelTransition.objects.filter(model__name__in=model_names).delete()
    MLModelVersion.objects.filter(model__name__in=model_names).delete()
    TrainingDataset.objects.filter(model_name__in=model_names).delete()
    MLModel.objects.filter(name__in=model_names).delete()
    get_user_model().objects.filter(username__in=usernames).delete()
    if generation is None:
        RegistryGeneration.objects.all().delete()
    else:
        RegistryGeneration.objects.filter(pk=1).update(generation=generation)


@pytest.fixture(scope="module")
def demo_models(django_db_setup, django_db_blocker, artifact_root, tmp_path_factory,
                train_recipe_once):
    """The four global demo recipes trained, approved and deployed (committed rows); the fit
    itself runs once per run (`train_recipe_once`), the same data every module."""
    data = tmp_path_factory.mktemp("demo-data")
    frames = {"posts": demo_posts(n=DEMO_POSTS), "leads": demo_leads(n=DEMO_LEADS)}
    paths = {}
    for kind, frame in frames.items():
        paths[kind] = data / f"{kind}.csv"
        frame.to_csv(paths[kind], index=False)
    model_names = list(DEMO_RECIPES)
    usernames = [username for username, _ in PEOPLE.values()]
    storages = _with_artifacts_at(django_settings.STORAGES, artifact_root)
    with django_db_blocker.unblock(), override_settings(STORAGES=storages), \
            train_recipe_once():
        taken = list(MLModel.objects.filter(name__in=model_names).values_list("name", flat=True))
        assert not taken, f"demo_models needs a registry without {taken}"
        generation = RegistryGeneration.objects.filter(pk=1).values_list(
            "generation", flat=True).first()
        try:
            ensure_governance_groups()
            people = {role: UserFactory(username=username, groups=[group])
                      for role, (username, group) in PEOPLE.items()}
            versions = {}
            for name, kind in DEMO_RECIPES.items():
                version = model_train(recipe_name=name, user=people["user"],
                                      data_path=paths[kind])
                # 1,500 rows make the fairness gate noisy: a reviewer may override it.
                failed = selectors.failed_gates(version)
                version = registry.model_version_approve(
                    version=version, user=people["reviewer"], notes="approved for API tests",
                    override_justification="small test sample" if failed else "")
                versions[name] = registry.model_version_deploy(
                    version=version, user=people["deployer"], notes="deployed for API tests")
        except BaseException:
            _cleanup(model_names=model_names, usernames=usernames, generation=generation)
            raise
    yield DemoModels(versions=versions, frames=frames, people=people)
    with django_db_blocker.unblock():
        _cleanup(model_names=model_names, usernames=usernames, generation=generation)


@pytest.fixture
def version_copy(db):
    """Register a new version of `of` (same estimator, schema and profile), approved.

    `name`/`client_id` register it under another (per-client) model instead; the result is
    in `staging`, ready to deploy as champion, challenger or shadow.
    """
    def register(*, of: MLModelVersion, people: dict, name: str | None = None,
                 client_id: str = "") -> MLModelVersion:
        estimator = artifacts.bundle_load(manifest=of.artifact_manifest,
                                          model_sha256=of.model_sha256).estimator
        version = registration.model_version_register(
            name=name or of.model.name, task=of.model.task, user=people["user"],
            estimator=estimator, feature_schema=of.feature_schema,
            training_dataset_sha256=of.training_dataset_sha256,
            training_samples=of.training_samples, training_duration_seconds=0.0,
            hyperparameters=of.hyperparameters, metrics=of.metrics,
            reference_profile=of.reference_profile, client_id=client_id,
            global_model=of.model if client_id else None,
        )
        return registry.model_version_approve(version=version, user=people["reviewer"],
                                              notes="approved in test")
    return register


class JSONClient(APIClient):
    """APIClient with a JSON poster that sends exactly the given text or value."""

    def post_json(self, path: str, body=None, *, raw: str | bytes | None = None, **extra):
        data = raw if raw is not None else json.dumps(body)
        return self.post(path, data=data, content_type="application/json", **extra)


@pytest.fixture
def api_key(db):
    """(ClientAPIKey row, plain key) of a key bound to no client, holding every scope."""
    return serving.api_key_create(name="api tests", scopes=SCOPES)


@pytest.fixture
def api_client(api_key) -> JSONClient:
    return JSONClient(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")


@pytest.fixture
def anonymous_client(db) -> JSONClient:
    return JSONClient()
