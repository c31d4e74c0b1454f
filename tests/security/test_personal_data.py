"""Personal data (docs/registry.md#personal-data).

The `email` scenario: a pipeline one-hot encoding an `email` column, registered with
`register_model --pii email` and deployed through the real services, never shows an address
(a training one or a request's) in an API answer, an error body, a log line, a prediction
log row, the reference profile, a drift report or the model card; it still takes the
address as an input. A category column with more distinct training values than
CATEGORY_ENUM_MAX is not enumerated: no allowed list is stored, published or echoed, and
an unseen value goes to the model as it is.
"""

import json
from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import CommandError, call_command
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.ml.profile import reference_profile_build
from mlregistry import artifacts, registration, services
from mlregistry.models import MLModel, MLModelVersion, ModelTransition
from monitoring.drift import drift_check
from predictions.models import PredictionLog
from tests.recipes import ModelInputRecorder

NAME = "contact-likes"
# Every address, trained on or sent, ends so: the tests look for this.
DOMAIN = "@personal.test"
ADDRESSES = [f"person{i}{DOMAIN}" for i in range(12)]
UNKNOWN = f"newcomer{DOMAIN}"
CITY_MODEL = "city-likes"


def assert_no_address(text: str) -> None:
    assert DOMAIN not in text


def training_frame(category: str, values: list[str], n: int = 240) -> pandas.DataFrame:
    rng = numpy.random.default_rng(0)
    followers = rng.uniform(100, 1000, n)
    hashtags = rng.integers(0, 10, n)
    return pandas.DataFrame({
        category: [values[i % len(values)] for i in range(n)],
        "followers": followers, "hashtags": hashtags,
        "likes": 2 * followers + 5 * hashtags + (numpy.arange(n) % 3) + rng.normal(0, 1, n),
    })


def model_files(tmp_path, frame: pandas.DataFrame, category: str):
    """The data as a CSV, and a skops file of a pipeline fitted on it that one-hot encodes
    `category` (unknown values all zeros)."""
    prep = ColumnTransformer([("category", OneHotEncoder(handle_unknown="ignore"), [category])],
                             remainder="passthrough")
    pipeline = Pipeline([("prep", prep), ("model", LinearRegression())]).fit(
        frame.drop(columns="likes"), frame["likes"])
    data, artifact = tmp_path / "data.csv", tmp_path / "model.skops"
    frame.to_csv(data, index=False)
    skops.io.dump(pipeline, artifact)
    return data, artifact


def register(name: str, data, artifact, *extra: str) -> str:
    out = StringIO()
    call_command("register_model", name, "--artifact", str(artifact), "--data", str(data),
                 "--target", "likes", "--task", "regression", "--user", "dana", *extra,
                 stdout=out)
    return out.getvalue().splitlines()[-1]


def deploy(version: MLModelVersion, people: dict) -> MLModelVersion:
    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="approved in test")
    return services.model_version_deploy(version=version, user=people["deployer"],
                                         notes="deployed in test")


@pytest.fixture
def contacts(people, tmp_path, log_lines):
    """The `email` model, registered with --pii email, approved and deployed."""
    data, artifact = model_files(tmp_path, training_frame("email", ADDRESSES), "email")
    version = register(NAME, data, artifact, "--pii", "email")
    return deploy(MLModelVersion.objects.get(model__name=NAME, version=version), people)


def instance(email, *, followers=500.0, hashtags=3) -> dict:
    return {"email": email, "followers": followers, "hashtags": hashtags}


def predict(client, instances: list, name: str = NAME):
    return client.post_json(f"/api/v1/models/{name}/predict", {"instances": instances})


def feature(version: MLModelVersion, name: str) -> dict:
    return next(f for f in version.feature_schema["features"] if f["name"] == name)


# --- the `email` scenario -------------------------------------------------------------------


def test_register_model_pii_marks_the_column_and_lists_none_of_its_values(contacts):
    email = feature(contacts, "email")

    assert (email["pii"], email["input"], email["categories"]) == (True, True, None)


def test_the_registered_version_stores_no_address(contacts):
    stored = MLModelVersion.objects.filter(pk=contacts.pk).values(
        "feature_schema", "reference_profile", "metrics", "hyperparameters", "fairness_report",
        "gate_results", "training_report", "global_importance").get()
    documents = [artifacts.artifact_storage().open(entry["path"]).read().decode()
                 for entry in contacts.artifact_manifest["artifacts"]
                 if entry["format"] == "json"]
    notes = list(ModelTransition.objects.filter(model__name=NAME).values_list("notes", flat=True))

    assert "email" not in contacts.reference_profile["features"]
    assert documents
    for text in (json.dumps(stored), json.dumps(MLModel.objects.get(name=NAME).feature_schema),
                 *documents, json.dumps(notes)):
        assert_no_address(text)


def test_the_model_api_answers_hold_no_address(contacts, api_client):
    answers = [api_client.get(path) for path in (
        "/api/v1/models", f"/api/v1/models/{NAME}", f"/api/v1/models/{NAME}/versions")]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    schema = answers[1].json()["feature_schema"]
    assert next(f for f in schema["features"] if f["name"] == "email")["categories"] is None
    for answer in answers:
        assert_no_address(answer.content.decode())


def test_predict_serves_known_and_unknown_addresses_and_logs_neither(contacts, api_client):
    response = predict(api_client, [instance(ADDRESSES[0]), instance(UNKNOWN)])

    assert response.status_code == 200, response.json()
    assert_no_address(response.content.decode())
    logged = list(PredictionLog.objects.values_list("features", flat=True))
    assert logged == [{"followers": 500.0, "hashtags": 3}] * 2


def test_a_422_for_the_personal_column_echoes_no_address(contacts, api_client):
    response = predict(api_client, [instance(12345), instance(UNKNOWN, followers="many")])

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["index"], d["field"], d["code"]) for d in details] == [
        (0, "email", "wrong_type"), (1, "followers", "wrong_type")]
    assert_no_address(response.content.decode())
    assert not PredictionLog.objects.exists()


def test_explain_of_an_address_answers_without_it(contacts, api_client):
    response = api_client.post_json(f"/api/v1/models/{NAME}/explain",
                                    {"instance": instance(UNKNOWN)})

    assert response.status_code == 200, response.json()
    explanation = response.json()["explanations"][0]
    assert set(explanation["contributions"]) == {"email", "followers", "hashtags"}
    assert_no_address(response.content.decode())


def test_feedback_on_a_prediction_of_an_address_holds_no_address(contacts, api_client):
    answered = predict(api_client, [instance(ADDRESSES[1])])
    prediction_id = answered.json()["predictions"][0]["prediction_id"]

    response = api_client.post_json(f"/api/v1/predictions/{prediction_id}/feedback",
                                    {"actual": 1000.0})

    assert response.status_code == 200, response.json()
    assert_no_address(response.content.decode())
    log = PredictionLog.objects.get()
    assert (log.actual, log.features) == (1000.0, {"followers": 500.0, "hashtags": 3})


def test_the_drift_report_checks_no_personal_column_and_holds_no_address(
        contacts, api_client, settings):
    settings.DRIFT_MIN_SAMPLES = 20
    predict(api_client, [instance(address, followers=100.0 + i)
                         for i, address in enumerate([*ADDRESSES, UNKNOWN] * 3)])

    report = drift_check(version_id=contacts.pk)
    response = api_client.get(f"/api/v1/models/{NAME}/drift")

    assert (report.status, set(report.features)) == ("ok", {"followers", "hashtags"})
    assert response.status_code == 200
    assert_no_address(response.content.decode())


def test_the_model_card_names_the_personal_column_and_none_of_its_values(contacts):
    out = StringIO()
    call_command("model_card", NAME, contacts.version, stdout=out)

    card = out.getvalue()
    assert "| email | category | yes | no | yes |" in card
    assert_no_address(card)


def test_no_log_line_holds_an_address(contacts, api_client, settings, log_lines):
    settings.DRIFT_MIN_SAMPLES = 1
    answered = predict(api_client, [instance(ADDRESSES[2]), instance(UNKNOWN)])
    predict(api_client, [instance(12345), instance(UNKNOWN, followers="many")])
    api_client.post_json(f"/api/v1/models/{NAME}/explain", {"instance": instance(UNKNOWN)})
    prediction_id = answered.json()["predictions"][0]["prediction_id"]
    api_client.post_json(f"/api/v1/predictions/{prediction_id}/feedback", {"actual": 1.0})
    drift_check(version_id=contacts.pk)

    text, lines = log_lines()
    assert "predicted" in text  # the capture saw the requests
    assert_no_address(text)
    for line in lines:
        assert_no_address(line)


def test_unmarking_the_personal_column_afterwards_breaks_the_audit_chain(contacts):
    schema = contacts.feature_schema
    feature(contacts, "email")["pii"] = False
    MLModelVersion.objects.filter(pk=contacts.pk).update(feature_schema=schema)

    with pytest.raises(CommandError, match="schema_sha256 differs"):
        call_command("verify_audit", NAME, stdout=StringIO())


# --- register_model --pii refusals --------------------------------------------------------


def registry_is_empty(artifact_dir) -> bool:
    return (not MLModel.objects.exists() and not ModelTransition.objects.exists()
            and not (artifact_dir.exists() and any(p.is_file() for p in artifact_dir.rglob("*"))))


@pytest.mark.parametrize(("extra", "reason"), [
    (["--pii", "email", "--pii", "e_mail"], r"column\(s\) not in the data: e_mail$"),
    (["--pii", "likes"], "the target column 'likes' cannot be personal"),
    (["--pii", "email", "--protected", "email"], "email cannot be both personal"),
], ids=["unknown-column", "target", "protected"])
def test_register_model_refuses_a_pii_column_and_writes_nothing(
        data_scientist, tmp_path, artifact_dir, extra, reason):
    data, artifact = model_files(tmp_path, training_frame("email", ADDRESSES), "email")

    with pytest.raises(CommandError, match=f"^validation_error: .*{reason}"):
        register(NAME, data, artifact, *extra)

    assert registry_is_empty(artifact_dir)


def test_register_model_withholds_a_model_error_that_would_quote_an_address(
        data_scientist, tmp_path, artifact_dir):
    frame = training_frame("email", ADDRESSES)
    strict = ColumnTransformer([("category", OneHotEncoder(), ["email"])],
                               remainder="passthrough")
    fitted_on_half = frame[frame["email"].isin(ADDRESSES[:6])]
    pipeline = Pipeline([("prep", strict), ("model", LinearRegression())]).fit(
        fitted_on_half.drop(columns="likes"), fitted_on_half["likes"])
    data, artifact = tmp_path / "data.csv", tmp_path / "strict.skops"
    frame.to_csv(data, index=False)
    skops.io.dump(pipeline, artifact)

    with pytest.raises(CommandError) as refused:
        register(NAME, data, artifact, "--pii", "email")

    assert "the model cannot take this data: ValueError" in str(refused.value)
    assert_no_address(str(refused.value))
    assert registry_is_empty(artifact_dir)


# --- high-cardinality categories ------------------------------------------------------------


CITIES = [f"city-{i:02d}" for i in range(60)]


@pytest.fixture
def cities(people, tmp_path):
    """A model with a `city` column of 60 distinct training values (no --pii), deployed."""
    data, artifact = model_files(tmp_path, training_frame("city", CITIES), "city")
    version = register(CITY_MODEL, data, artifact)
    return deploy(MLModelVersion.objects.get(model__name=CITY_MODEL, version=version), people)


def city_instance(city, *, hashtags=3) -> dict:
    return {"city": city, "followers": 500.0, "hashtags": hashtags}


def test_a_category_with_more_values_than_category_enum_max_is_not_enumerated(cities):
    city = feature(cities, "city")

    assert (city["dtype"], city["pii"], city["categories"]) == ("category", False, None)


def test_the_api_publishes_no_allowed_list_of_a_high_cardinality_category(cities, api_client):
    response = api_client.get(f"/api/v1/models/{CITY_MODEL}")

    assert response.status_code == 200
    schema = response.json()["feature_schema"]
    assert next(f for f in schema["features"] if f["name"] == "city")["categories"] is None
    assert "city-07" not in response.content.decode()


def test_an_unseen_value_of_a_high_cardinality_category_goes_to_the_model_as_it_is(
        cities, api_client, settings):
    settings.PULSELYTICS_LIFECYCLE_HOOKS = [*settings.PULSELYTICS_LIFECYCLE_HOOKS,
                                            "tests.recipes.ModelInputRecorder"]
    ModelInputRecorder.frames.clear()

    response = predict(api_client, [city_instance("atlantis")], name=CITY_MODEL)

    assert response.status_code == 200, response.json()
    assert ModelInputRecorder.frames[-1]["city"].tolist() == ["atlantis"]


def test_a_422_never_lists_the_values_of_a_high_cardinality_category(
        people, tmp_path, api_client, settings):
    settings.CATEGORY_ENUM_MAX = 10
    few = CITIES[:15]  # few enough for a 422 to list them, were they enumerated
    data, artifact = model_files(tmp_path, training_frame("city", few), "city")
    deploy(MLModelVersion.objects.get(model__name=CITY_MODEL,
                                      version=register(CITY_MODEL, data, artifact)), people)

    response = predict(api_client, [city_instance("atlantis", hashtags="x")], name=CITY_MODEL)

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["field"], d["code"]) for d in details] == [("hashtags", "wrong_type")]
    assert "city-" not in response.content.decode()


# --- versions registered before personal data was recorded ---------------------------------


def test_a_version_registered_without_pii_information_loads_and_serves(people, api_client,
                                                                       tmp_path):
    frame = training_frame("email", ADDRESSES)
    _, artifact = model_files(tmp_path, frame, "email")
    schema = {"target": "likes", "features": [
        {"name": "email", "dtype": "category", "categories": sorted(ADDRESSES),
         "min": None, "max": None, "protected": False, "input": True},
        {"name": "followers", "dtype": "float", "categories": None, "min": None, "max": None,
         "protected": False, "input": True},
        {"name": "hashtags", "dtype": "int", "categories": None, "min": None, "max": None,
         "protected": False, "input": True}]}
    estimator = skops.io.load(artifact)
    inputs = frame.drop(columns="likes")
    profile = reference_profile_build(frame=inputs, schema=schema,
                                      outputs=estimator.predict(inputs), seed=0)
    version = registration.model_version_register(
        name=NAME, task="regression", user=people["user"], estimator=estimator,
        feature_schema=schema, training_dataset_sha256="0" * 64, training_samples=len(frame),
        training_duration_seconds=0.01, hyperparameters={}, metrics={"r2": 0.9},
        reference_profile=profile)
    deploy(version, people)

    known = predict(api_client, [instance(ADDRESSES[0])])
    unknown = predict(api_client, [instance(UNKNOWN)])

    assert known.status_code == 200, known.json()
    # No personal column: its declared categories still hold, as they did.
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["code"] == "unknown_category"
