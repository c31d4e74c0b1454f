"""Contract rules every client can rely on (docs/api.md): lists come a page at a time
(#pagination), and a body with a field the operation does not take is refused (#feedback)."""

import pytest

from predictions.models import PredictionLog
from tests.factories import register_approved_version, register_deployed_version

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

MODEL = "contract-likes"
INSTANCE = {"followers": 1.5, "hashtags": 2}


@pytest.fixture
def versions(people) -> list[str]:
    """Three versions of MODEL, the newest first (as the list gives them)."""
    deployed = register_deployed_version(**people, name=MODEL)
    newer = [register_approved_version(**people, name=MODEL, slope=slope)
             for slope in (3.0, 4.0)]
    return [v.version for v in reversed([deployed, *newer])]


def test_versions_come_a_page_at_a_time(versions, api_client):
    response = api_client.get(f"/api/v1/models/{MODEL}/versions?limit=1&offset=1")

    assert response.status_code == 200, response.content
    page = response.json()
    assert (page["count"], [v["version"] for v in page["results"]]) == (3, [versions[1]])
    assert page["next"].endswith(f"/api/v1/models/{MODEL}/versions?limit=1&offset=2")
    assert page["previous"].endswith(f"/api/v1/models/{MODEL}/versions?limit=1")


def test_versions_first_page_holds_up_to_the_default_limit(versions, api_client):
    page = api_client.get(f"/api/v1/models/{MODEL}/versions").json()

    assert [v["version"] for v in page["results"]] == versions
    assert (page["count"], page["next"], page["previous"]) == (3, None, None)


def test_models_come_a_page_at_a_time(versions, api_client):
    page = api_client.get("/api/v1/models?limit=1").json()

    assert page["count"] >= 1
    assert len(page["results"]) == 1


@pytest.mark.parametrize(("query", "field", "code"), [
    ("limit=0", "limit", "out_of_bounds"),
    ("limit=1001", "limit", "out_of_bounds"),
    ("limit=ten", "limit", "wrong_type"),
    ("limit=-1", "limit", "wrong_type"),
    ("offset=-5", "offset", "wrong_type"),
    ("offset=1.5", "offset", "wrong_type"),
])
def test_a_page_outside_the_limits_is_refused(versions, api_client, query, field, code):
    response = api_client.get(f"/api/v1/models/{MODEL}/versions?{query}")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_query_parameter"
    assert [(d["field"], d["code"]) for d in error["details"]] == [(field, code)]


@pytest.fixture
def answered(people, api_client) -> str:
    register_deployed_version(**people, name=MODEL)
    answer = api_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE])
    assert answer.status_code == 200, answer.content
    return answer.json()["predictions"][0]["prediction_id"]


def test_feedback_with_an_unknown_field_is_refused_naming_it(answered, api_client):
    response = api_client.post_json(f"/api/v1/predictions/{answered}/feedback",
                                    {"actual": 3.0, "acutal_at": "2026-01-01"})

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in error["details"]] == [
        ("acutal_at", "unexpected_field")]
    assert PredictionLog.objects.get(prediction_id=answered).actual_at is None


@pytest.mark.parametrize(("body", "code"), [({}, "missing"), ({"actual": None}, "missing"),
                                            ([3.0], "wrong_type")])
def test_feedback_without_an_actual_is_refused(answered, api_client, body, code):
    response = api_client.post_json(f"/api/v1/predictions/{answered}/feedback", body)

    assert response.status_code == 422, response.content
    assert [(d["field"], d["code"]) for d in response.json()["error"]["details"]] == [
        ("actual", code)]
    assert PredictionLog.objects.get(prediction_id=answered).actual_at is None
