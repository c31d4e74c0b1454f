"""Feedback labels in the form the prediction returned them (docs/api.md#feedback): a binary
model's class also as true/false, 1/0 or "1"/"0", stored in the model's own type, on the
single and the bulk endpoint alike; labels that are no class of the model are refused."""

import pytest
from django.utils import timezone

from predictions.models import PredictionLog
from tests.factories import labelled_logs_create

INT_CLASSES = {"0": 0.2, "1": 0.8}
BOOL_CLASSES = {"False": 0.2, "True": 0.8}
TEXT_CLASSES = {"no": 0.2, "yes": 0.8}
THREE_CLASSES = {"0": 0.2, "1": 0.5, "2": 0.3}


def answered(version, *, value, probabilities) -> PredictionLog:
    """One logged answer of a classifier that said `value` with these class probabilities."""
    (row,) = labelled_logs_create(version=version, values=[value], actuals=[None],
                                  created_at=timezone.now(), probabilities=[probabilities])
    return row


def post_single(api_client, row, actual):
    return api_client.post_json(f"/api/v1/predictions/{row.prediction_id}/feedback",
                                {"actual": actual})


def post_bulk(api_client, row, actual):
    return api_client.post_json("/api/v1/feedback", {"outcomes": [
        {"prediction_id": str(row.prediction_id), "actual": actual}]})


POSTERS = [pytest.param(post_single, id="single"), pytest.param(post_bulk, id="bulk")]


def stored(row):
    return PredictionLog.objects.get(pk=row.pk).actual


@pytest.mark.parametrize("post", POSTERS)
@pytest.mark.parametrize(("value", "probabilities", "actual", "expected"), [
    pytest.param(1, INT_CLASSES, 1, 1, id="int-as-returned"),
    pytest.param(1, INT_CLASSES, True, 1, id="int-as-true"),
    pytest.param(1, INT_CLASSES, False, 0, id="int-as-false"),
    pytest.param(1, INT_CLASSES, "1", 1, id="int-as-text"),
    pytest.param(1, INT_CLASSES, "true", 1, id="int-as-text-true"),
    pytest.param(1, INT_CLASSES, 0.0, 0, id="int-as-float"),
    pytest.param(True, BOOL_CLASSES, True, True, id="bool-as-returned"),
    pytest.param(True, BOOL_CLASSES, 1, True, id="bool-as-one"),
    pytest.param(True, BOOL_CLASSES, "0", False, id="bool-as-text-zero"),
    pytest.param(True, BOOL_CLASSES, "True", True, id="bool-as-its-text"),
    pytest.param("yes", TEXT_CLASSES, "no", "no", id="text-as-returned"),
    pytest.param(2, THREE_CLASSES, "2", 2, id="multiclass-as-text"),
])
def test_a_label_in_an_equivalent_form_is_stored_as_the_models_class(
        champion, api_client, post, value, probabilities, actual, expected):
    row = answered(champion, value=value, probabilities=probabilities)

    response = post(api_client, row, actual)

    assert response.status_code == 200, response.json()
    assert stored(row) == expected
    assert type(stored(row)) is type(expected)


@pytest.mark.parametrize("post", POSTERS)
@pytest.mark.parametrize(("value", "probabilities", "actual"), [
    pytest.param(1, INT_CLASSES, 2, id="int-unknown-class"),
    pytest.param(1, INT_CLASSES, 0.5, id="int-fraction"),
    pytest.param(1, INT_CLASSES, "yes", id="int-other-text"),
    pytest.param(True, BOOL_CLASSES, 2, id="bool-two"),
    pytest.param("yes", TEXT_CLASSES, True, id="text-true"),
    pytest.param("yes", TEXT_CLASSES, 1, id="text-one"),
    # A multiclass model's classes are not false and true: only their own forms count.
    pytest.param(2, THREE_CLASSES, True, id="multiclass-true"),
])
def test_a_label_that_is_no_class_of_the_model_is_refused(champion, api_client, post, value,
                                                          probabilities, actual):
    row = answered(champion, value=value, probabilities=probabilities)

    response = post(api_client, row, actual)

    body = response.json()
    code = (body["error"]["details"][0]["code"] if post is post_single
            else body["results"][0]["code"])
    assert code == "unknown_category"
    assert response.status_code == (422 if post is post_single else 200)
    assert stored(row) is None


def test_a_single_feedback_conflict_carries_the_stored_value(champion, api_client):
    row = answered(champion, value=1, probabilities=INT_CLASSES)
    post_single(api_client, row, True)

    response = post_single(api_client, row, 0)

    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["details"]["stored"]) == ("feedback_exists", 1)
    assert stored(row) == 1


def test_the_same_label_in_another_form_is_a_bulk_duplicate(champion, api_client):
    row = answered(champion, value=1, probabilities=INT_CLASSES)
    post_bulk(api_client, row, 1)

    response = post_bulk(api_client, row, "true")

    assert response.json()["results"][0]["status"] == "duplicate"
