"""Warm start (docs/deploy.md#warm-start): every live version loads before the first request,
and one that cannot load is reported without stopping the others."""

import pytest
from prometheus_client import REGISTRY

from core.ml.explain import ModelExplainer
from core.ml.profile import reference_profile_build
from predictions import services as serving
from predictions.loader import model_cache
from predictions.warmup import live_versions_warm
from tests.factories import (
    SCHEMA,
    artifact_tamper,
    drift_frame,
    drift_outputs,
    register_deployed_version,
)

MODEL = "engagement-likes"


@pytest.fixture
def live_versions(people):
    """A champion, a challenger taking 30 % of the traffic and a shadow, in that order, each
    with a reference profile of real rows (the background its explainer is built on)."""
    frame = drift_frame(n=200, seed=0)[["followers", "hashtags"]]
    profile = reference_profile_build(frame=frame, schema=SCHEMA, outputs=drift_outputs(frame),
                                      seed=0)
    return [register_deployed_version(**people, slope=1.0, reference_profile=profile),
            register_deployed_version(**people, slope=2.0, traffic=30,
                                      reference_profile=profile),
            register_deployed_version(**people, slope=3.0, shadow=True,
                                      reference_profile=profile)]


def loads(version) -> float:
    return REGISTRY.get_sample_value("pulselytics_model_loads_total",
                                     {"model": MODEL, "version": version.version}) or 0.0


def label(version) -> str:
    return f"{MODEL} {version.version}"


def test_warm_start_loads_every_live_version(live_versions):
    before = [loads(version) for version in live_versions]

    report = live_versions_warm()

    assert report == {label(version): "ready" for version in live_versions}
    assert [loads(version) for version in live_versions] == [n + 1 for n in before]


def test_warm_start_builds_each_explainer(live_versions):
    live_versions_warm()
    warm = [loads(version) for version in live_versions]

    for live in model_cache.live_versions():
        assert isinstance(model_cache.served(live).explainer_or_error, ModelExplainer)
    assert [loads(version) for version in live_versions] == warm  # built then, not now


def test_prediction_after_warm_start_loads_nothing(live_versions):
    live_versions_warm()
    before = [loads(version) for version in live_versions]

    for key in ("user-1", "user-2", "user-3", "user-4"):
        serving.prediction_make(model_name=MODEL, instances=[{"followers": 10.0, "hashtags": 2}],
                                request_id=key)

    assert [loads(version) for version in live_versions] == before


def test_warm_start_reports_a_broken_version_and_loads_the_others(live_versions):
    champion, challenger, shadow = live_versions
    artifact_tamper(challenger)

    report = live_versions_warm()

    assert report[label(challenger)] != "ready"
    assert (report[label(champion)], report[label(shadow)]) == ("ready", "ready")


def test_ready_is_not_ready_while_a_challenger_cannot_load(live_versions, anonymous_client):
    artifact_tamper(live_versions[1])
    live_versions_warm()

    response = anonymous_client.get("/api/v1/ready")

    assert (response.status_code, response.json()) == (503, {"status": "not_ready"})


def test_ready_stays_ready_when_only_a_shadow_cannot_load(live_versions, anonymous_client):
    artifact_tamper(live_versions[2])
    live_versions_warm()

    response = anonymous_client.get("/api/v1/ready")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})
