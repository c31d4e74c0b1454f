"""POST /api/v1/models/{name}/versions/{version}/predict and .../explain
(docs/api.md#version-pinning): answers by the named version in staging or production, logged
with arm `pinned`, which no A/B figure, SLO, drift check, live performance, live fairness
audit or anomaly rate counts."""

from datetime import timedelta

import numpy
import pandas
import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from core.ml.profile import reference_profile_build
from monitoring.ab import ab_evaluate_challenger
from monitoring.drift import drift_check
from monitoring.performance import performance_evaluate
from monitoring.slo import serving_stats
from predictions import loader
from predictions.models import PredictionLog
from tests.factories import (
    SCHEMA,
    labelled_logs_create,
    register_approved_version,
    register_deployed_version,
    register_version,
)

MODEL = "pinned-likes"
INSTANCES = [{"followers": 12.5, "hashtags": 4}, {"followers": 8.0, "hashtags": 1},
             {"followers": 15.0, "hashtags": 6}]


@pytest.fixture
def profile() -> dict:
    """A reference profile of rows like the tiny estimator's: the explainer's background
    and the drift check's reference."""
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"followers": rng.normal(10.0, 3.0, 200),
                              "hashtags": rng.poisson(3.0, 200)})
    return reference_profile_build(frame=frame, schema=SCHEMA, seed=0,
                                   outputs=2.0 * frame["followers"] + frame["hashtags"])


@pytest.fixture
def champion(people, profile):
    return register_deployed_version(**people, name=MODEL, slope=1.0, reference_profile=profile)


@pytest.fixture
def staging(champion, people, profile):
    """An approved version that takes no traffic: only a pinned request reaches it."""
    return register_approved_version(**people, name=MODEL, slope=3.0, reference_profile=profile)


def pinned_url(version, action: str = "predict") -> str:
    return f"/api/v1/models/{MODEL}/versions/{version}/{action}"


def pinned(api_client, version, instances=INSTANCES) -> list[dict]:
    response = api_client.post_json(pinned_url(version.version), {"instances": instances})
    assert response.status_code == 200, response.json()
    return response.json()["predictions"]


def live(api_client, instances=INSTANCES) -> list[dict]:
    response = api_client.post_json(f"/api/v1/models/{MODEL}/predict", {"instances": instances})
    assert response.status_code == 200, response.json()
    return response.json()["predictions"]


def test_pinned_predict_on_a_staging_version_answers_with_it(api_client, champion, staging):
    response = api_client.post_json(pinned_url(staging.version), {"instances": INSTANCES})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["model"], body["served_by"], body["scope"]) == (MODEL, MODEL, "global")
    assert {(p["version"], p["model_sha256"], p["arm"]) for p in body["predictions"]} == {
        (staging.version, staging.model_sha256, "pinned")}
    assert [p["value"] for p in body["predictions"]] != [p["value"] for p in live(api_client)]
    logged = PredictionLog.objects.filter(
        prediction_id__in=[p["prediction_id"] for p in body["predictions"]])
    assert {(row.model_version_id, row.arm) for row in logged} == {(staging.pk, "pinned")}
    assert logged.count() == len(INSTANCES)


def test_pinned_explain_explains_with_the_named_version(api_client, champion, staging):
    answers = pinned(api_client, staging)

    response = api_client.post_json(pinned_url(staging.version, "explain"),
                                    {"instances": INSTANCES})

    assert response.status_code == 200, response.json()
    explanations = response.json()["explanations"]
    assert {e["version"] for e in explanations} == {staging.version}
    assert [e["value"] for e in explanations] == pytest.approx(
        [a["value"] for a in answers], rel=1e-9)


def test_pinned_predict_on_an_archived_version_is_refused(api_client, champion, people,
                                                          profile):
    register_deployed_version(**people, name=MODEL, slope=3.0, reference_profile=profile)

    response = api_client.post_json(pinned_url(champion.version), {"instances": INSTANCES})

    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["details"]["status"]) == ("version_not_servable", "archived")
    assert not PredictionLog.objects.exists()


def test_pinned_predict_on_an_unapproved_version_is_refused(api_client, champion, people):
    testing = register_version(user=people["user"], name=MODEL, slope=3.0)

    response = api_client.post_json(pinned_url(testing.version), {"instances": INSTANCES})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_not_servable"


def test_pinned_explain_on_an_archived_version_is_refused(api_client, champion, people,
                                                          profile):
    register_deployed_version(**people, name=MODEL, slope=3.0, reference_profile=profile)

    response = api_client.post_json(pinned_url(champion.version, "explain"),
                                    {"instances": INSTANCES})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_not_servable"


def test_pinned_predict_on_an_unknown_version_is_not_found(api_client, champion):
    response = api_client.post_json(pinned_url("9.9.9"), {"instances": INSTANCES})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "version_not_found"


def test_pinned_request_is_not_copied_to_the_shadows(api_client, champion, people, profile):
    shadow = register_deployed_version(**people, name=MODEL, slope=5.0, shadow=True,
                                       reference_profile=profile)

    pinned(api_client, champion)

    assert not PredictionLog.objects.filter(model_version=shadow).exists()


def test_pinned_predictions_are_left_out_of_the_ab_figures(api_client, champion, people,
                                                           profile):
    challenger = register_deployed_version(**people, name=MODEL, slope=3.0, traffic=20,
                                           reference_profile=profile)
    for version, arm in ((champion, "champion"), (challenger, "challenger")):
        labelled_logs_create(version=version, arm=arm, values=[10.0] * 40, actuals=[11.0] * 40,
                             created_at=timezone.now())
    for answer in pinned(api_client, challenger):
        posted = api_client.post_json(f"/api/v1/predictions/{answer['prediction_id']}/feedback",
                                      {"actual": 1000.0})
        assert posted.status_code == 200

    evaluation = ab_evaluate_challenger(champion=champion, challenger=challenger,
                                        now=timezone.now() + timedelta(minutes=1))

    arm = evaluation.arms["challenger"]
    assert (arm["n"], arm["n_labelled"], arm["requests"]) == (40, 40, 40)
    assert arm["metric"] == pytest.approx(1.0)  # the challenger rows' MAE, no pinned error
    assert PredictionLog.objects.filter(model_version=challenger, arm="pinned",
                                        actual__isnull=False).count() == len(INSTANCES)


def test_pinned_requests_are_left_out_of_the_slo(api_client, champion):
    start = timezone.now()
    live(api_client)
    pinned(api_client, champion)

    stats = serving_stats(model_name=MODEL, start=start,
                          end=timezone.now() + timedelta(minutes=1))

    assert stats.requests == 1


def test_pinned_predictions_are_left_out_of_the_drift_window(api_client, champion):
    live(api_client)
    pinned(api_client, champion)

    report = drift_check(version_id=champion.pk)

    assert report.n_current == len(INSTANCES)
    assert PredictionLog.objects.filter(model_version=champion).count() == 2 * len(INSTANCES)


def test_pinned_predictions_are_left_out_of_the_champions_live_performance(api_client,
                                                                          champion):
    for answer in live(api_client) + pinned(api_client, champion):
        posted = api_client.post_json(f"/api/v1/predictions/{answer['prediction_id']}/feedback",
                                      {"actual": 10.0})
        assert posted.status_code == 200

    reports = performance_evaluate(version_id=champion.pk,
                                   now=timezone.now() + timedelta(minutes=1))

    by_arm = {report.arm: report.n_labelled for report in reports}
    assert by_arm == {"champion": len(INSTANCES)}  # no report (nor alert) for backtests


def test_versions_that_are_not_live_stay_loaded_only_up_to_the_bound(api_client, champion,
                                                                      staging, people,
                                                                      profile, monkeypatch):
    monkeypatch.setattr(loader, "OFF_TABLE_BUNDLES", 1)
    other = register_approved_version(**people, name=MODEL, slope=5.0, reference_profile=profile)

    def loads(version) -> float:
        return REGISTRY.get_sample_value("pulselytics_model_loads_total",
                                         {"model": MODEL, "version": version.version}) or 0.0

    before = loads(staging)
    pinned(api_client, staging)
    pinned(api_client, staging)
    pinned(api_client, other)  # takes the one place: the first version is let go
    pinned(api_client, staging)

    assert loads(staging) - before == 2
