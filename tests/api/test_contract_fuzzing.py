"""Contract fuzzing (issue 7): schemathesis generates requests from the API's own OpenAPI
document (/api/schema/) and sends them over HTTP to a live server on the test PostgreSQL.
Every answer must be no 5xx, carry a documented status code, content type and headers, and
have a body that matches the documented schema; a request the schema forbids (negative
case) must be refused with a 4xx.

Three demo models (regression, classification, anomaly) are trained small, approved and
deployed first, with logged predictions and drift reports, so that generated requests
reach real behaviour and not only 404s: besides the purely generated cases (positive and
negative), path parameters are set to the live model names and the logged prediction ids,
and predict/explain/feedback bodies are built from real demo rows and logged answers,
some with fields swapped for arbitrary JSON (NUL and lone surrogates included), dropped
or added. Most cases carry a valid API key (global, or bound to a client: 403 when it
asks for another); some carry the generated header or none (401).

Instances are also drawn from the published schemas alone (issue 16, item 8): each model's
`GET /api/v1/models/{name}/schema` is put in place of the open instance object of a copy of
the OpenAPI document narrowed to that model (tests/api/published.py), and schemathesis
generates whole predict/explain bodies from it, which must reach 200 without any hand-built
body. On the same documents a stateful run follows the OpenAPI links of a predict answer to
its prediction's feedback, record and explanation.

Generation is derandomized (the same requests on every run) and bounded per operation.
"""

import collections

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from demo import data as demo_data
from mlregistry import selectors
from mlregistry import services as registry
from monitoring.drift import drift_check_all
from predictions import services as serving
from predictions.api import auth
from predictions.api.auth import APIKeyRateThrottle
from predictions.api.serializers import INSTANCE_SCHEMA
from predictions.loader import model_cache
from predictions.models import SCOPES
from tests.api.published import model_document, openapi_30_form
from training import services as training

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]
# Recipe -> the demo data it trains on: one model per task (regression, classification,
# anomaly), so every documented shape of a prediction and an explanation is answered.
MODELS = {"engagement-likes": demo_data.demo_posts, "lead-conversion": demo_data.demo_leads,
          "engagement-anomaly": demo_data.demo_posts}
TRAINING_ROWS = 600
LOGGED_PER_MODEL = 120  # over DRIFT_MIN_SAMPLES: the drift reports carry figures
POOL_ROWS = 40  # demo rows the realistic predict/explain bodies are built from
# Generated examples per operation (hypothesis' max_examples), one request each; the test
# asserts the total it sent.
EXAMPLES = {
    "GET /api/v1/health": 1,  # no inputs: one request says it all
    "GET /api/v1/ready": 1,
    "GET /api/v1/models": 30,
    "GET /api/v1/models/{name}": 40,
    "GET /api/v1/models/{name}/versions": 40,
    "GET /api/v1/models/{name}/schema": 30,
    "GET /api/v1/models/{name}/drift": 40,
    "GET /api/v1/models/{name}/performance": 15,
    "POST /api/v1/models/{name}/predict": 150,
    "POST /api/v1/models/{name}/explain": 90,
    "POST /api/v1/predictions/{prediction_id}/feedback": 90,
    "POST /api/v1/models/{name}/versions/{version}/predict": 60,
    "POST /api/v1/models/{name}/versions/{version}/explain": 50,
    "GET /api/v1/predictions/{prediction_id}": 40,
    "GET /api/v1/predictions/{prediction_id}/explanation": 40,
    "POST /api/v1/feedback": 60,
}
# The stateful run over each model's document: scenarios per model, steps per scenario.
STATEFUL_SCENARIOS = 6
STATEFUL_STEPS = 4
MIN_REQUESTS = 800
# The operations whose bodies hold instances, and those a predict answer links to.
PUBLISHED_PATHS = ["/api/v1/models/{name}/predict", "/api/v1/models/{name}/explain",
                   "/api/v1/models/{name}/versions/{version}/predict",
                   "/api/v1/models/{name}/versions/{version}/explain"]
LINKED_PATHS = ["/api/v1/predictions/{prediction_id}/feedback",
                "/api/v1/predictions/{prediction_id}",
                "/api/v1/predictions/{prediction_id}/explanation"]

# Any text JSON can carry, NUL and lone surrogates (sent as \ud800 escapes) included:
# PostgreSQL cannot store the one, UTF-8 cannot encode the other. Random text seldom holds
# them, so they are also drawn on their own, beside other awkward strings.
AWKWARD_TEXT = ["", "\x00", "a\x00b", "\ud800", "x\udfff", "🙂" * 101, "x" * 201]
json_text = st.one_of(
    st.text(st.characters(categories=("L", "N", "P", "S", "Z", "Cc", "Cs")), max_size=20),
    st.sampled_from(AWKWARD_TEXT))
json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | json_text)
json_values = st.recursive(json_scalars,
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(json_text, inner, max_size=3),
                           max_leaves=6)


def _native(value):
    return value.item() if hasattr(value, "item") else value


def _pool(version, frame) -> list[dict]:
    inputs = [f["name"] for f in version.feature_schema["features"] if f.get("input", True)]
    return [{name: _native(value) for name, value in row.items()}
            for row in frame[inputs].to_dict("records")]


@st.composite
def mutated(draw, instance: dict) -> dict:
    """A real demo row with fields replaced by arbitrary JSON or dropped, or one added."""
    instance = dict(instance)
    for key in draw(st.lists(st.sampled_from(sorted(instance)), max_size=3, unique=True)):
        if draw(st.booleans()):
            instance[key] = draw(json_values)
        else:
            del instance[key]
    if draw(st.booleans()):
        instance[draw(json_text)] = draw(json_values)
    return instance


def realistic_bodies(pool: list[dict], *, single_field: str | None):
    """Predict/explain bodies in each accepted form (a bare array; the envelope with its
    optional fields, sometimes with an unexpected one; for explain, one `instance`) of real
    demo rows: as they are in two draws out of three, else with some rows mutated."""
    rows = st.sampled_from(pool)
    instance = st.one_of(rows, rows, rows.flatmap(mutated))
    instances = st.one_of(st.lists(rows, min_size=1, max_size=3),
                          st.lists(rows, min_size=1, max_size=3),
                          st.lists(instance, min_size=1, max_size=3))
    keys = st.sampled_from(["", "user-42", demo_data.BIG_CLIENT, "no-such-client"]) | json_text
    envelope = st.fixed_dictionaries({"instances": instances},
                                     optional={"routing_key": keys, "client_id": keys})
    unexpected = st.tuples(envelope, json_text, json_values).map(
        lambda drawn: {drawn[1]: drawn[2], **drawn[0]})
    forms = [instances, envelope, envelope, unexpected]
    if single_field:
        forms.append(st.fixed_dictionaries({single_field: instance}, optional={
            "routing_key": keys, "client_id": keys}))
    return st.one_of(forms)


def with_path(strategy, parameter: str, values: list, versions=None):
    """Generated cases with one path parameter set to a real value (a live model, a logged
    prediction id), so the request gets past the lookup."""
    def put(drawn):
        case, value = drawn
        extra = ({"version": versions[value]}
                 if versions and "version" in case.path_parameters else {})
        case.path_parameters = {**case.path_parameters, parameter: value, **extra}
        return case
    return st.tuples(strategy, st.sampled_from(values)).map(put)


def case_strategies(operation, data) -> list:
    """Every way one operation's cases are drawn: generated as the schema allows (positive)
    and as it does not (negative, where the operation has inputs to negate), without a key
    (401) and with the valid one, and pointed at the live models and logged predictions."""
    auth = {"Authorization": f"Api-Key {data['key']}"}
    any_key = st.sampled_from([auth, {"Authorization": f"Api-Key {data['client_key']}"}])

    def generated(mode, **fixed):
        return operation.as_strategy(generation_mode=mode, **fixed)

    positive, negative = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
    has_inputs = bool(list(operation.iter_parameters()) or operation.body)
    strategies = [generated(positive)] + ([generated(negative)] if has_inputs else [])
    if not operation.headers:  # open endpoints: health, ready
        return strategies
    strategies += [generated(positive, headers=auth)]
    if "{name}" in operation.path:
        names = list(data["pools"])
        # A pinned operation is pointed at each model's live version.
        versions = data["versions"] if "{version}" in operation.path else {}
        strategies += [generated(negative, headers=auth),
                       with_path(generated(positive, headers=auth), "name", names, versions)]
        if operation.body:
            single = "instance" if operation.path.endswith("/explain") else None
            realistic = st.sampled_from(names).flatmap(lambda name: st.tuples(
                realistic_bodies(data["pools"][name], single_field=single), any_key,
            ).map(lambda drawn: operation.Case(
                path_parameters={"name": name, **({"version": versions[name]} if versions else {})},
                body=drawn[0], headers=drawn[1], media_type="application/json")))
            # Bodies generated from each model's published instance schema alone.
            published = st.one_of([
                data["published"][name][operation.path][operation.method.upper()].as_strategy(
                    generation_mode=positive, headers=auth) for name in names])
            # Listed six times: half the requests should reach the models.
            strategies += [with_path(generated(negative, headers=auth), "name", names,
                                     versions)]
            strategies += [realistic] * 3 + [published] * 3
    if "{prediction_id}" in operation.path:
        ids = [prediction_id for prediction_id, _ in data["logged"]]
        # A logged prediction with its own answer as the outcome (valid once, then 409), or
        # with any JSON as the outcome.
        realistic = st.tuples(st.sampled_from(data["logged"]), st.booleans(), json_values,
                              any_key).map(
            lambda drawn: operation.Case(
                path_parameters={"prediction_id": drawn[0][0]}, headers=drawn[3],
                body={"actual": drawn[0][1] if drawn[1] else drawn[2]},
                media_type="application/json"))
        strategies += [
            generated(negative, headers=auth),
            with_path(generated(positive, headers=auth), "prediction_id", ids),
            with_path(generated(negative, headers=auth), "prediction_id", ids),
        ] + ([realistic, realistic] if operation.body else [])  # the GETs take no body
    return strategies


@pytest.fixture
def live_api(people, tmp_path, settings, monkeypatch, live_server):
    """The three demo models live, each with logged predictions and a drift report."""
    settings.REGISTRY_POLL_SECONDS = 0
    rates = dict.fromkeys(("api_key", "api_key_instances", "api_key_explain"), "1000000/min")
    # DRF reads the rates when the throttle class is defined: patch the classes too.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(auth.InstanceRateThrottle, "THROTTLE_RATES", rates)
    model_cache.clear()
    auth._verified.clear()
    pools, logged, versions = {}, [], {}
    for name, make_frame in MODELS.items():
        path = tmp_path / f"{name}.csv"
        make_frame(n=TRAINING_ROWS).to_csv(path, index=False)
        version = training.model_train(recipe_name=name, user=people["user"], data_path=path)
        version = registry.model_version_approve(
            version=version, user=people["reviewer"], notes="contract fuzzing",
            override_justification="small test data" if selectors.failed_gates(version) else "")
        version = registry.model_version_deploy(version=version, user=people["deployer"],
                                                notes="contract fuzzing")
        rows = _pool(version, make_frame(n=TRAINING_ROWS, seed=7).head(LOGGED_PER_MODEL))
        pools[name] = rows[:POOL_ROWS]
        versions[name] = version.version
        result = serving.prediction_make(model_name=name, instances=rows,
                                         request_id=f"fuzz-{name}")
        logged += [(p["prediction_id"], p["value"]) for p in result.predictions]
    drift_check_all()
    _, key = serving.api_key_create(name="contract fuzzing", scopes=SCOPES)
    _, client_key = serving.api_key_create(name="contract fuzzing, bound",
                                           client_id=demo_data.BIG_CLIENT, scopes=SCOPES)
    yield {"url": live_server.url, "key": key, "client_key": client_key, "pools": pools,
           "logged": logged, "versions": versions}
    model_cache.clear()
    auth._verified.clear()


def published_schemas(api: dict, data: dict) -> dict:
    """Per model, the API's document narrowed to it with its published instance schema in
    place of the open instance object (loaded by schemathesis)."""
    schemas = {}
    for name in data["pools"]:
        answer = requests.get(f"{data['url']}/api/v1/models/{name}/schema",
                              headers={"Authorization": f"Api-Key {data['key']}"}, timeout=10)
        assert answer.status_code == 200, answer.content
        document = model_document(
            api, paths=PUBLISHED_PATHS + LINKED_PATHS,
            path_values={"name": name, "version": data["versions"][name]},
            instance_schema=openapi_30_form(answer.json()["instance_schema"]),
            generic_instance=INSTANCE_SCHEMA)
        schemas[name] = schemathesis.openapi.from_dict(document)
        schemas[name].location = data["url"]  # where its requests go
    return schemas


def stateful(schema, *, data: dict, session: requests.Session,
             answers: collections.Counter) -> None:
    """Scenarios over one model's document: predict, then what its answer links to."""
    headers = {"Authorization": f"Api-Key {data['key']}"}

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"session": session, "headers": headers}

        def after_call(self, response, case):
            super().after_call(response, case)
            answers["stateful " + case.operation.label, response.status_code] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers=headers)

    Workflow.run(settings=hypothesis_settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, deadline=None,
        derandomize=True, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck)))


def fuzz(operation, strategies: list, *, session: requests.Session, max_examples: int,
         answers: collections.Counter) -> None:
    """Send `max_examples` generated cases of one operation and check every answer;
    `answers` counts them per (operation, status), and those drawn from a published
    instance schema also per ("published " + operation, status)."""
    @hypothesis_settings(max_examples=max_examples, deadline=None, derandomize=True,
                         database=None, phases=[Phase.generate, Phase.shrink],
                         suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def run(case):
        response = case.call(session=session)
        answers[operation.label, response.status_code] += 1
        if case.operation.schema is not operation.schema:
            answers["published " + operation.label, response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_generated_requests_get_documented_answers_and_no_server_error(live_api):
    schema = schemathesis.openapi.from_url(f"{live_api['url']}/api/schema/?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.label for operation in operations} == set(EXAMPLES)
    answers: collections.Counter = collections.Counter()
    live_api["published"] = published_schemas(schema.raw_schema, live_api)

    with requests.Session() as session:
        for operation in operations:
            fuzz(operation, case_strategies(operation, live_api), session=session,
                 max_examples=EXAMPLES[operation.label], answers=answers)
        for model_schema in live_api["published"].values():
            stateful(model_schema, data=live_api, session=session, answers=answers)

    sent = collections.Counter()
    for (label, _), count in answers.items():
        if not label.startswith("published "):
            sent[label] += count
    print("requests per operation:", dict(sent), "answers:", dict(answers))
    assert sum(sent.values()) >= MIN_REQUESTS
    # Every operation was reached and answered successfully at least once: the generated
    # requests exercised real behaviour, not only the error paths.
    ok = {label for (label, status) in answers if status == 200}
    assert set(EXAMPLES) <= ok
    # Bodies generated from the published instance schemas alone reach the models, and the
    # stateful run reaches a prediction's feedback, record and explanation by its links.
    assert {f"published POST {path}" for path in PUBLISHED_PATHS} <= ok
    assert {"stateful POST /api/v1/predictions/{prediction_id}/feedback",
            "stateful GET /api/v1/predictions/{prediction_id}"} <= ok
