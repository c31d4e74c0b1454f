"""The bad-input catalogue (issue 7): every kind of bad request the API can receive, in one
table, each answered with its docs/api.md#errors status and code and leaving the database as it was.

Each row of CATALOGUE is one request against one small live regression model (schema
SCHEMA: a bounded float, a bounded int, a declared category, a bool and an optional PII
category that is no model input). Every row asserts:

- the status and `error.code` (for 422, the exact `details` as (index, field, code));
- the envelope `{"error": {"code", "message", "request_id", "details"}}`, with
  `request_id` equal to the `X-Request-ID` header (the client's own id, echoed);
- no stack trace and none of the request's marker values (MARKERS) in the body: error
  messages name fields and codes, never values (a key the model does not know is echoed
  back, truncated, because it is the client's own field name, not a value);
- the database unchanged: PredictionLog, PredictionFailure (only 5xx are recorded; none
  here), Alert, MLModelVersion and ModelTransition counts, and the outcome of every
  logged prediction (the feedback rows).

Decisions the table documents:
- An empty body, whitespace, a UTF-8 byte-order mark, invalid UTF-8, a charset other than
  UTF-8, JSON nested deeper than the interpreter's recursion limit (10,000 levels of `[`)
  and an integer of more than 4,300 digits are 400 `malformed_json` (predictions.parsers),
  never a RecursionError or a 500.
- A body without a Content-Type, or of any type but application/json, is 415
  `unsupported_media_type`.
- NaN, Infinity, -Infinity, 1e400 and an integer literal beyond the float range (10**400)
  are `not_finite` for a number feature, `wrong_type` for a bool or category one. The
  same for `actual` in feedback.
- `null` for an input feature is `missing` (as an absent key); for a non-input feature it
  means "not given" and is no error.
- A key that only looks like a feature (Cyrillic "о" in "fоllowers"), an emoji, a NUL or
  a lone surrogate is `unexpected_field` (and the real feature, absent, is `missing`).
- Duplicate keys in one JSON object: the parser keeps the last value, as Python's json
  and every JSON parser the project uses do; that value is the one validated, served and
  logged, so no two parts of the system disagree on what was sent (see
  `duplicate-key-last-value-is-validated`).
- An invalid UUID as a prediction id is 404 `prediction_not_found`, like an unknown one.

Elsewhere, by behaviour rather than by input: 401/403 in tests/security/, 429 and 503 in
tests/predictions/test_api_errors.py, 500 in tests/security/test_error_disclosure.py.
"""

import json
from dataclasses import dataclass, field

import pandas
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.ml.schema import feature_spec
from mlregistry import registration
from mlregistry import services as registry
from mlregistry.models import MLModelVersion, ModelTransition
from monitoring.models import Alert
from predictions.models import PredictionFailure, PredictionLog

MODEL = "catalogue-likes"
SCHEMA = {
    "target": "likes",
    "features": [
        feature_spec(name="followers", dtype="float", minimum=0),
        feature_spec(name="hashtags", dtype="int", minimum=0, maximum=30),
        feature_spec(name="platform", dtype="category", categories=["instagram", "tiktok", "x"]),
        feature_spec(name="has_link", dtype="bool"),
        feature_spec(name="author_email", dtype="category", pii=True, input=False),
    ],
}
# Values no error body may contain (they would be echoed feature values).
MARKERS = ("987654.25", "zz-pii@example.com", "zz-marker")
VALID = {"followers": 987654.25, "hashtags": 3, "platform": "tiktok", "has_link": True,
         "author_email": "zz-pii@example.com"}
DROP = object()


def instance(**changes) -> dict:
    """VALID with `changes` (DROP removes a key; new keys go last)."""
    merged = {**VALID, **changes}
    return {key: value for key, value in merged.items() if value is not DROP}


def with_literal(literal: str, field_name: str = "followers", *, envelope: bool = True) -> str:
    """JSON text of one instance whose `field_name` is the JSON literal `literal`."""
    body = {"instances": [instance(**{field_name: "__LITERAL__"})]} if envelope else (
        [instance(**{field_name: "__LITERAL__"})])
    return json.dumps(body).replace('"__LITERAL__"', literal)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass(frozen=True)
class Bad:
    """One bad request: where it goes, what it sends, what must come back."""

    status: int
    code: str
    body: object = None
    raw: str | bytes | None = None
    endpoint: str = "predict"  # predict, explain, feedback-answered, ... (see url_for)
    method: str = "post"
    content_type: str = "application/json"
    settings: dict = field(default_factory=dict)
    details: list[tuple] | dict | None = None  # (index, field, code) rows, or the dict


def invalid(*rows: tuple, **kwargs) -> Bad:
    return Bad(422, "validation_error", details=list(rows), **kwargs)


CATALOGUE = {
    # --- 400 malformed_json: not JSON, or JSON the parser refuses -----------------------
    "malformed-truncated": Bad(400, "malformed_json", raw='{"instances": ['),
    "malformed-single-quotes": Bad(400, "malformed_json", raw="{'instances': []}"),
    "malformed-trailing-comma": Bad(400, "malformed_json", raw="[1, 2,]"),
    "malformed-empty-body": Bad(400, "malformed_json", raw=""),
    "malformed-whitespace-body": Bad(400, "malformed_json", raw="  \n "),
    "malformed-byte-order-mark": Bad(400, "malformed_json",
                                     raw="\ufeff" + json.dumps([VALID])),
    "malformed-invalid-utf8": Bad(400, "malformed_json", raw=b'[{"platform": "\xff\xfe"}]'),
    "malformed-latin1-charset": Bad(400, "malformed_json", raw=json.dumps([VALID]),
                                    content_type="application/json; charset=latin-1"),
    "malformed-nested-10000-deep": Bad(400, "malformed_json", raw=nested(10_000)),
    "malformed-nested-10000-deep-in-a-value": Bad(
        400, "malformed_json", raw=with_literal(nested(10_000))),
    "malformed-integer-of-5000-digits": Bad(400, "malformed_json",
                                            raw=with_literal("9" * 5000)),
    "malformed-feedback-truncated": Bad(400, "malformed_json", raw='{"actual": ',
                                        endpoint="feedback-answered"),
    "malformed-feedback-empty-body": Bad(400, "malformed_json", raw="",
                                         endpoint="feedback-answered"),
    "malformed-explain-nested": Bad(400, "malformed_json", raw=nested(10_000),
                                    endpoint="explain"),
    # --- 415 unsupported_media_type ------------------------------------------------------
    "media-text-plain": Bad(415, "unsupported_media_type", raw=json.dumps([VALID]),
                            content_type="text/plain"),
    "media-form-urlencoded": Bad(415, "unsupported_media_type", raw="followers=1",
                                 content_type="application/x-www-form-urlencoded"),
    "media-multipart": Bad(415, "unsupported_media_type", raw="--x\r\n\r\n--x--",
                           content_type="multipart/form-data; boundary=x"),
    "media-xml": Bad(415, "unsupported_media_type", raw="<instances/>",
                     content_type="application/xml"),
    # A server leaves CONTENT_TYPE out of the environ without the header; DRF reads that as
    # "" (the test client cannot leave it out).
    "media-no-content-type": Bad(415, "unsupported_media_type", raw=json.dumps([VALID]),
                                 content_type=""),
    "media-feedback-text-plain": Bad(415, "unsupported_media_type", raw='{"actual": 1}',
                                     content_type="text/plain", endpoint="feedback-answered"),
    # --- 413: too many instances, too many bytes -----------------------------------------
    "batch-over-predict-max-batch": Bad(
        413, "batch_too_large", body=[VALID] * 3, settings={"PREDICT_MAX_BATCH": 2},
        details={"limit": 2, "received": 3}),
    "batch-explain-over-100": Bad(413, "batch_too_large", body={"instances": [VALID] * 101},
                                  endpoint="explain", details={"limit": 100, "received": 101}),
    "payload-over-api-max-body-bytes": Bad(
        413, "payload_too_large", body=[VALID] * 3, settings={"API_MAX_BODY_BYTES": 64},
        details={"limit": 64}),
    "payload-feedback-over-api-max-body-bytes": Bad(
        413, "payload_too_large", body={"actual": 1.0, "padding": "x" * 100},
        settings={"API_MAX_BODY_BYTES": 64}, endpoint="feedback-answered",
        details={"limit": 64}),
    # --- 422: the envelope ---------------------------------------------------------------
    "envelope-empty-batch": invalid((None, "instances", "missing"), body={"instances": []}),
    "envelope-empty-bare-array": invalid((None, "instances", "missing"), body=[]),
    "envelope-empty-object": invalid((None, "instances", "missing"), body={}),
    "envelope-instances-null": invalid((None, "instances", "wrong_type"),
                                       body={"instances": None}),
    "envelope-instances-an-object": invalid((None, "instances", "wrong_type"),
                                            body={"instances": VALID}),
    "envelope-body-a-string": invalid((None, "instances", "wrong_type"), body="zz-marker"),
    "envelope-body-a-number": invalid((None, "instances", "wrong_type"), body=42),
    "envelope-body-null": invalid((None, "instances", "wrong_type"), body=None),
    "envelope-body-nan": invalid((None, "instances", "wrong_type"), raw="NaN"),
    "envelope-instance-not-an-object": invalid((0, None, "wrong_type"), (1, None, "wrong_type"),
                                               body=[1, "zz-marker"]),
    "envelope-unexpected-field": invalid((None, "debug", "unexpected_field"),
                                         body={"instances": [VALID], "debug": True}),
    "envelope-routing-key-a-number": invalid((None, "routing_key", "wrong_type"),
                                             body={"instances": [VALID], "routing_key": 5}),
    "envelope-routing-key-too-long": invalid(
        (None, "routing_key", "out_of_bounds"),
        body={"instances": [VALID], "routing_key": "zz-marker" + "k" * 200}),
    "envelope-client-id-an-object": invalid((None, "client_id", "wrong_type"),
                                            body={"instances": [VALID], "client_id": {}}),
    "envelope-duplicate-instances-key-last-wins": invalid(
        (None, "instances", "missing"), raw='{"instances": [' + json.dumps(VALID) + '], '
                                            '"instances": []}'),
    "envelope-explain-instance-and-instances": invalid(
        (None, "instance", "unexpected_field"), endpoint="explain",
        body={"instance": VALID, "instances": [VALID]}),
    # --- 422: non-finite and huge numbers ------------------------------------------------
    "number-nan": invalid((0, "followers", "not_finite"), raw=with_literal("NaN")),
    "number-infinity": invalid((0, "followers", "not_finite"), raw=with_literal("Infinity")),
    "number-minus-infinity": invalid((0, "followers", "not_finite"),
                                     raw=with_literal("-Infinity")),
    "number-1e400": invalid((0, "followers", "not_finite"), raw=with_literal("1e400")),
    "number-minus-1e400-bare-array": invalid((0, "followers", "not_finite"),
                                             raw=with_literal("-1e400", envelope=False)),
    "number-10-to-400-integer-for-float": invalid((0, "followers", "not_finite"),
                                                  raw=with_literal("1" + "0" * 400)),
    "number-10-to-400-integer-for-int": invalid((0, "hashtags", "not_finite"),
                                                raw=with_literal("1" + "0" * 400, "hashtags")),
    "number-nan-for-bool": invalid((0, "has_link", "wrong_type"),
                                   raw=with_literal("NaN", "has_link")),
    "number-infinity-for-category": invalid((0, "platform", "wrong_type"),
                                            raw=with_literal("Infinity", "platform")),
    # --- 422: wrong types ----------------------------------------------------------------
    "type-string-for-float": invalid((0, "followers", "wrong_type"),
                                     body=[instance(followers="987654.25")]),
    "type-string-for-int": invalid((0, "hashtags", "wrong_type"),
                                   body=[instance(hashtags="3")]),
    "type-fraction-for-int": invalid((0, "hashtags", "wrong_type"),
                                     body=[instance(hashtags=3.5)]),
    "type-bool-for-float": invalid((0, "followers", "wrong_type"),
                                   body=[instance(followers=True)]),
    "type-array-for-float": invalid((0, "followers", "wrong_type"),
                                    body=[instance(followers=[987654.25])]),
    "type-object-for-float": invalid((0, "followers", "wrong_type"),
                                     body=[instance(followers={"v": 987654.25})]),
    "type-number-for-bool": invalid((0, "has_link", "wrong_type"), body=[instance(has_link=1)]),
    "type-string-for-bool": invalid((0, "has_link", "wrong_type"),
                                    body=[instance(has_link="true")]),
    "type-number-for-category": invalid((0, "platform", "wrong_type"),
                                        body=[instance(platform=1)]),
    "type-nul-in-free-text-category": invalid((0, "author_email", "wrong_type"),
                                              body=[instance(author_email="zz-marker\x00")]),
    "type-lone-surrogate-in-free-text-category": invalid(
        (0, "author_email", "wrong_type"),
        raw=with_literal('"zz-marker\\ud800"', "author_email")),
    # --- 422: nulls, missing and extra fields --------------------------------------------
    "null-input-feature-is-missing": invalid((0, "followers", "missing"),
                                             body=[instance(followers=None)]),
    "null-every-input-feature": invalid(
        (0, "followers", "missing"), (0, "hashtags", "missing"), (0, "platform", "missing"),
        (0, "has_link", "missing"),
        body=[{"followers": None, "hashtags": None, "platform": None, "has_link": None}]),
    "missing-input-feature": invalid((0, "followers", "missing"),
                                     body=[instance(followers=DROP)]),
    "missing-everything": invalid(
        (0, "followers", "missing"), (0, "hashtags", "missing"), (0, "platform", "missing"),
        (0, "has_link", "missing"), body=[{}]),
    "extra-field": invalid((0, "colour", "unexpected_field"),
                           body=[instance(colour="zz-marker")]),
    "extra-field-in-second-instance-only": invalid(
        (1, "colour", "unexpected_field"), body=[VALID, instance(colour="zz-marker")]),
    # --- 422: unknown categories and bounds ----------------------------------------------
    "unknown-category": invalid((0, "platform", "unknown_category"),
                                body=[instance(platform="zz-marker-myspace")]),
    "unknown-category-other-case": invalid((0, "platform", "unknown_category"),
                                           body=[instance(platform="TikTok")]),
    "out-of-bounds-int-above": invalid((0, "hashtags", "out_of_bounds"),
                                       body=[instance(hashtags=31)]),
    "out-of-bounds-float-below": invalid((0, "followers", "out_of_bounds"),
                                         body=[instance(followers=-0.5)]),
    "out-of-bounds-int-given-as-float": invalid((0, "hashtags", "out_of_bounds"),
                                                body=[instance(hashtags=31.0)]),
    # --- 422: unicode in keys ------------------------------------------------------------
    "unicode-key-cyrillic-lookalike": invalid(
        (0, "followers", "missing"), (0, "f\u043ellowers", "unexpected_field"),
        body=[{"f\u043ellowers": 987654.25, **instance(followers=DROP)}]),
    "unicode-key-emoji": invalid((0, "\U0001f525", "unexpected_field"),
                                 body=[instance(**{"\U0001f525": 1})]),
    "unicode-key-nul": invalid((0, "followers\x00", "unexpected_field"),
                               body=[instance(**{"followers\x00": 1})]),
    "unicode-key-lone-surrogate": invalid(
        (0, "k\\ud800", "unexpected_field"),
        raw='[{"k\\ud800": 1, ' + json.dumps(VALID)[1:] + "]"),
    "unicode-key-too-long-is-truncated": invalid(
        (0, "k" * 100 + "\u2026", "unexpected_field"), body=[instance(**{"k" * 5000: 1})]),
    # --- 422: duplicate keys -------------------------------------------------------------
    "duplicate-key-last-value-is-validated": invalid(
        (0, "followers", "wrong_type"),
        raw='[{"followers": 1.0, ' + json.dumps(instance(followers="zz-marker"))[1:] + "]"),
    # --- 422: explain validates like predict ---------------------------------------------
    "explain-invalid-instance": invalid((0, "platform", "unknown_category"), endpoint="explain",
                                        body={"instance": instance(platform="zz-marker")}),
    # --- feedback ------------------------------------------------------------------------
    "feedback-actual-a-string": invalid((None, "actual", "wrong_type"),
                                        endpoint="feedback-answered", body={"actual": "many"}),
    "feedback-actual-a-bool": invalid((None, "actual", "wrong_type"),
                                      endpoint="feedback-answered", body={"actual": True}),
    "feedback-actual-an-array": invalid((None, "actual", "wrong_type"),
                                        endpoint="feedback-answered", body={"actual": [1]}),
    "feedback-actual-null": invalid((None, "actual", "missing"), endpoint="feedback-answered",
                                    body={"actual": None}),
    "feedback-actual-nan": invalid((None, "actual", "not_finite"), endpoint="feedback-answered",
                                   raw='{"actual": NaN}'),
    "feedback-actual-1e400": invalid((None, "actual", "not_finite"),
                                     endpoint="feedback-answered", raw='{"actual": 1e400}'),
    "feedback-actual-10-to-400-integer": invalid(
        (None, "actual", "not_finite"), endpoint="feedback-answered",
        raw='{"actual": 1' + "0" * 400 + "}"),
    "feedback-body-without-actual": invalid((None, "actual", "missing"),
                                            endpoint="feedback-answered", body={}),
    "feedback-body-with-extra-field": invalid(
        (None, "note", "unexpected_field"), endpoint="feedback-answered",
        body={"actual": 1.0, "note": "zz-marker"}),
    "feedback-body-an-array": invalid((None, "actual", "wrong_type"),
                                      endpoint="feedback-answered", body=[1.0]),
    "feedback-twice": Bad(409, "feedback_exists", endpoint="feedback-given",
                          body={"actual": 12.0}),
    # --- 404 -----------------------------------------------------------------------------
    "unknown-prediction-id": Bad(404, "prediction_not_found", endpoint="feedback-unknown",
                                 body={"actual": 1.0}),
    "invalid-uuid-prediction-id": Bad(404, "prediction_not_found", endpoint="feedback-invalid",
                                      body={"actual": 1.0}),
    "unknown-model-predict": Bad(404, "model_not_found", endpoint="predict-unknown",
                                 body=[VALID], details={"model": "no-such-model"}),
    "unknown-model-explain": Bad(404, "model_not_found", endpoint="explain-unknown",
                                 body={"instance": VALID}, details={"model": "no-such-model"}),
    "unknown-endpoint": Bad(404, "not_found", endpoint="nowhere", body=[VALID]),
    # --- 405 -----------------------------------------------------------------------------
    "get-on-predict": Bad(405, "method_not_allowed", method="get"),
}


@pytest.fixture
def served(people, api_client):
    """The catalogue's live model, and two answered predictions: one with feedback."""
    frame = pandas.DataFrame({"followers": [10.0, 200.0, 3000.0, 40.0],
                              "hashtags": [0.0, 1.0, 2.0, 3.0],
                              "platform": ["instagram", "tiktok", "x", "tiktok"],
                              "has_link": [0.0, 1.0, 0.0, 1.0]})
    estimator = Pipeline([
        ("encode", ColumnTransformer([("platform", OneHotEncoder(handle_unknown="ignore"),
                                       ["platform"])], remainder="passthrough")),
        ("model", LinearRegression()),
    ]).fit(frame, [1.0, 5.0, 30.0, 2.0])
    version = registration.model_version_register(
        name=MODEL, task="regression", user=people["user"], estimator=estimator,
        feature_schema=SCHEMA, training_dataset_sha256="0" * 64, training_samples=4,
        training_duration_seconds=0.01, hyperparameters={}, metrics={"r2": 0.9},
        reference_profile={"features": {}},
    )
    version = registry.model_version_approve(version=version, user=people["reviewer"],
                                             notes="catalogue")
    registry.model_version_deploy(version=version, user=people["deployer"], notes="catalogue")
    answered = api_client.post_json(f"/api/v1/models/{MODEL}/predict", [VALID, VALID])
    assert answered.status_code == 200, answered.content
    first, second = (p["prediction_id"] for p in answered.json()["predictions"])
    given = api_client.post_json(f"/api/v1/predictions/{second}/feedback", {"actual": 3.0})
    assert given.status_code == 200, given.content
    return {"answered": first, "given": second}


def url_for(endpoint: str, served: dict) -> str:
    feedback = "/api/v1/predictions/{}/feedback".format
    return {
        "predict": f"/api/v1/models/{MODEL}/predict",
        "explain": f"/api/v1/models/{MODEL}/explain",
        "predict-unknown": "/api/v1/models/no-such-model/predict",
        "explain-unknown": "/api/v1/models/no-such-model/explain",
        "feedback-answered": feedback(served["answered"]),
        "feedback-given": feedback(served["given"]),
        "feedback-unknown": feedback("00000000-0000-4000-8000-000000000000"),
        "feedback-invalid": feedback("not-a-uuid"),
        "nowhere": "/api/v1/nowhere",
    }[endpoint]


def database_state() -> dict:
    """What a refused request must leave as it was."""
    return {
        "PredictionLog": PredictionLog.objects.count(),
        "PredictionFailure": PredictionFailure.objects.count(),
        "Alert": Alert.objects.count(),
        "MLModelVersion": MLModelVersion.objects.count(),
        "ModelTransition": ModelTransition.objects.count(),
        "outcomes": sorted(PredictionLog.objects.values_list("prediction_id", "actual",
                                                            "actual_at")),
    }


def send(client, bad: Bad, url: str, request_id: str):
    headers = {"HTTP_X_REQUEST_ID": request_id}
    if bad.method == "get":
        return client.get(url, **headers)
    data = bad.raw if bad.raw is not None else json.dumps(bad.body)
    # generic(): post() would encode a body with an empty Content-Type as a form.
    return client.generic("POST", url, data=data, content_type=bad.content_type, **headers)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_bad_request_is_answered_with_its_code_and_changes_nothing(served, api_client, settings,
                                                                   name):
    bad = CATALOGUE[name]
    for setting, value in bad.settings.items():
        setattr(settings, setting, value)
    request_id = f"catalogue-{name}"[:64]
    before = database_state()

    response = send(api_client, bad, url_for(bad.endpoint, served), request_id)

    assert response.status_code == bad.status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == bad.code
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"] == request_id
    if isinstance(bad.details, list):
        assert [(d["index"], d["field"], d["code"]) for d in error["details"]] == bad.details
        assert all(d["message"] for d in error["details"])
    elif bad.details is not None:
        assert error["details"] == bad.details
    text = response.content.decode()
    assert "Traceback" not in text
    for marker in MARKERS:
        assert marker not in text
    assert database_state() == before
