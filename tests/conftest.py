"""Shared fixtures: the people, versions built through the real services, and servers.

PostgreSQL is chosen by tests/database_plugin.py (before Django starts); Redis and
Chromium are session fixtures here. A test that needs a missing server skips with the
reason; under REQUIRE_SERVICES=1 (CI) every skip is turned into a failure.
"""

import contextlib
import copy
import functools
import hashlib
import os

import joblib
import pandas
import pytest
import skops.io
from django.db import connection

from mlregistry import registration
from tests import servers
from tests.factories import (
    UserFactory,
    ensure_governance_groups,
    register_deployed_version,
    register_version,
)
from training import trainer


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    reason = "needs PostgreSQL (apt-get install postgresql; see `make ci-deps`)"
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if servers.REQUIRE_SERVICES and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"REQUIRE_SERVICES=1 forbids skips: {reason}"


@pytest.fixture(autouse=True)
def artifact_dir(tmp_path, settings):
    """Each test stores artifacts in its own folder."""
    location = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                      "OPTIONS": {"location": str(location)}},
    }
    return location


@pytest.fixture
def tripwire(tmp_path):
    """Where a Tripwire (tests/factories.py) leaves its trace when it is loaded."""
    return tmp_path / "unpickled"


@pytest.fixture
def deserializations(monkeypatch) -> list:
    """Every model file the artifact store deserializes (joblib.load, skops.io.loads)."""
    calls = []
    for module, name in ((joblib, "load"), (skops.io, "loads")):
        real = getattr(module, name)

        def spy(*args, real=real, name=name, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return calls


@pytest.fixture(scope="session")
def train_recipe_once():
    """A context manager under which the slow, pure parts of training run once per run for
    the same recipe, rows, seed and model: trainer.train_recipe (the fit, metrics, profile,
    fairness) and the serialization of its estimator (registration.model_version_bundle);
    later calls get copies of the first results. Everything around them (datasets, storing
    the files, registration, gates, audit rows) still runs each time. For module fixtures
    that train the same demo models again and again (tests/predictions/conftest.py)."""
    results, bundles = {}, {}
    real_train, real_bundle = trainer.train_recipe, registration.model_version_bundle
    handed_out = {}  # id(estimator) -> (key, estimator), while the context lasts

    def train_recipe(*, recipe, frame: pandas.DataFrame, seed: int, client_id: str = "",
                     model_name: str | None = None, **kwargs):
        rows = hashlib.sha256(pandas.util.hash_pandas_object(frame).to_numpy().tobytes())
        key = (recipe.name, tuple(frame.columns), rows.hexdigest(), seed, client_id,
               model_name)
        if key not in results:
            results[key] = real_train(recipe=recipe, frame=frame, seed=seed,
                                      client_id=client_id, model_name=model_name, **kwargs)
        trained = copy.deepcopy(results[key])
        handed_out[id(trained.estimator)] = (key, trained.estimator)
        return trained

    def model_version_bundle(*, estimator, reference_profile: dict, estimation_objects=None):
        serialize = functools.partial(real_bundle, estimator=estimator,
                                      reference_profile=reference_profile,
                                      estimation_objects=estimation_objects)
        key, known = handed_out.get(id(estimator), (None, None))
        if known is not estimator:  # not a copy handed out above: serialize it
            return serialize()
        # The estimation objects come with the estimator from the same cached training.
        profile, bundle = bundles.get(key, (None, None))
        if profile != reference_profile:
            bundle = serialize()
            bundles[key] = (copy.deepcopy(reference_profile), bundle)
        return copy.deepcopy(bundle)

    @contextlib.contextmanager
    def train_once():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trainer, "train_recipe", train_recipe)
            patch.setattr(registration, "model_version_bundle", model_version_bundle)
            try:
                yield
            finally:
                handed_out.clear()

    return train_once


@pytest.fixture(scope="module")
def groups_restored_after_module(django_db_blocker):
    """A transactional test's flush deletes the migrated groups: put them back afterwards."""
    yield
    with django_db_blocker.unblock():
        ensure_governance_groups()
        connection.close()


@pytest.fixture
def governance_groups(transactional_db):
    """An earlier transactional test may have flushed the migrated groups."""
    ensure_governance_groups()


@pytest.fixture(scope="session")
def redis_server():
    try:
        server = servers.RedisServer()
    except servers.ServiceUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def data_scientist(db):
    return UserFactory(username="dana", groups=["Data scientists"])


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita", groups=["Reviewers"])


@pytest.fixture
def deployer(db):
    return UserFactory(username="dev", groups=["Deployers"])


@pytest.fixture
def outsider(db):
    return UserFactory(username="olly")


@pytest.fixture
def approver_and_deployer(db):
    """One person in both groups, as small teams (and the demo's rita) are set up."""
    return UserFactory(username="rex", groups=["Reviewers", "Deployers"])


@pytest.fixture
def people(data_scientist, reviewer, deployer):
    return {"user": data_scientist, "reviewer": reviewer, "deployer": deployer}


@pytest.fixture
def champion(people):
    """Version 1.0.0 deployed as the champion."""
    return register_deployed_version(**people, slope=1.0)


@pytest.fixture
def testing_version(data_scientist):
    """A freshly registered version, in `testing`."""
    return register_version(user=data_scientist)


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One headless Chromium for the whole run, driven through Debian's chromedriver (never
    Selenium Manager, which would try to download a driver)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (apt-get install chromium chromium-driver; "
                    "see `make ci-deps`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-extensions",
                     f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
