"""GET /api/v1/models/{name}/drift (docs/api.md#drift): the latest drift report of each live
version."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from monitoring.drift import drift_check
from predictions import services as serving
from tests.factories import (
    drift_frame,
    drift_outputs,
    prediction_logs_create,
    register_profiled_version,
)

REPORT_KEYS = {"version", "window_start", "window_end", "n_reference", "n_current", "status",
               "dataset_drift", "features", "prediction"}
DOCUMENTED_FIGURES = {"kind", "psi", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue",
                "js_distance", "drifted", "severity"}


@pytest.fixture
def client(db) -> APIClient:
    _, key = serving.api_key_create(name="drift tests")
    return APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")


def test_drift_returns_the_latest_report_of_each_live_version(client, people):
    champion = register_profiled_version(**people)
    challenger = register_profiled_version(**people, seed=1, traffic=30)
    now = timezone.now()
    frame = drift_frame(n=150, seed=2, shift={"followers": 200.0})
    prediction_logs_create(version=champion, frame=frame, values=drift_outputs(frame),
                           created_at=now - timedelta(hours=1))
    drift_check(version_id=champion.pk, now=now - timedelta(hours=3))  # older: superseded
    latest = drift_check(version_id=champion.pk, now=now)
    drift_check(version_id=challenger.pk, now=now)

    response = client.get("/api/v1/models/drift-likes/drift")

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "drift-likes"
    assert [(r["version"], r["status"]) for r in body["reports"]] == [
        (champion.version, "ok"), (challenger.version, "insufficient_data")]
    report = body["reports"][0]
    assert set(report) == REPORT_KEYS
    assert (report["n_current"], report["n_reference"]) == (150, 1000)
    assert report["window_end"].replace("Z", "+00:00") == latest.window_end.isoformat()
    assert set(report["features"]) == {"followers", "hashtags", "platform", "has_link"}
    followers = report["features"]["followers"]
    assert set(followers) >= DOCUMENTED_FIGURES
    assert followers == latest.features["followers"]
    assert (followers["drifted"], followers["severity"]) == (True, "critical")
    assert (followers["chi2_statistic"], followers["chi2_pvalue"]) == (None, None)
    assert report["features"]["platform"]["ks_statistic"] is None
    assert set(report["prediction"]) >= DOCUMENTED_FIGURES
    assert body["reports"][1]["features"] == {}
    assert body["reports"][1]["prediction"] is None


def test_drift_of_a_model_never_checked_has_no_reports(client, people):
    register_profiled_version(**people)

    response = client.get("/api/v1/models/drift-likes/drift")

    assert response.status_code == 200
    assert response.json() == {"model": "drift-likes", "reports": []}


def test_drift_of_an_unknown_model_is_404_model_not_found(client):
    response = client.get("/api/v1/models/no-such-model/drift")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_drift_without_an_api_key_is_401_not_authenticated(db, people):
    register_profiled_version(**people)

    response = APIClient().get("/api/v1/models/drift-likes/drift")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_schema_documents_the_drift_endpoint_and_its_errors(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/models/{name}/drift"]["get"]
    assert operation["security"] == [{"ApiKeyAuth": []}]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/DriftResponse"}
    for status in ("401", "404", "429"):
        content = operation["responses"][status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/ErrorEnvelope"}, status
    figures = schema["components"]["schemas"]["DriftFigures"]["properties"]
    assert set(figures) >= DOCUMENTED_FIGURES
