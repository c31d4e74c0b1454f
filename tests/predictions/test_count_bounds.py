"""Count targets are never answered below 0 (docs/training.md#count-targets,
docs/api.md#explain): the demo likes and comments models, whose raw outputs do go below 0
on valid instances, answer max(value, 0) on every arm; their explanations report the bound
so that they add up to the answer; versions without the declaration answer as before."""

import numpy
import pandas
import pytest
from django.conf import settings

from mlregistry import artifacts, registration, selectors
from mlregistry import services as registry
from mlregistry.models import MLModelVersion
from predictions import services as serving
from predictions.models import PredictionLog
from predictions.routing import Challenger, challenger_for

LIKES, COMMENTS = "engagement-likes", "engagement-comments"
GENERATED = 10_000
EXTREME_SHARE = 0.25

pytestmark = pytest.mark.django_db


def valid_instances(schema: dict, frame: pandas.DataFrame, n: int, seed: int = 0) -> list[dict]:
    """`n` instances the schema accepts: each input feature drawn on its own from the demo
    rows (combinations the data never holds: a large average engagement on a tiny account),
    and in EXTREME_SHARE of the cells an extreme the schema still allows: its min or max,
    or 100 times the largest demo value where it declares no max."""
    rng = numpy.random.default_rng(seed)
    columns = {}
    for feature in schema["features"]:
        if not feature.get("input", True):
            continue
        name, dtype = feature["name"], feature["dtype"]
        if dtype == "category":
            columns[name] = rng.choice(feature["categories"], n).tolist()
            continue
        if dtype == "bool":
            columns[name] = (rng.random(n) < 0.5).tolist()
            continue
        observed = frame[name].to_numpy(dtype=float)
        low = observed.min() if feature["min"] is None else feature["min"]
        high = 100 * observed.max() if feature["max"] is None else feature["max"]
        values = rng.choice(observed, n)
        extreme = rng.random(n) < EXTREME_SHARE
        values[extreme] = rng.choice([low, high], int(extreme.sum()))
        columns[name] = (values.round().astype(numpy.int64) if dtype == "int" else values).tolist()
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def raw_outputs(demo_models, name: str, instances: list[dict]) -> numpy.ndarray:
    """What the model itself computes, without the bound."""
    return demo_models.estimator(name).predict(demo_models.frame_of(name, instances))


@pytest.fixture(scope="module")
def generated(demo_models) -> list[dict]:
    return valid_instances(demo_models.schema(LIKES), demo_models.frames["posts"], GENERATED)


@pytest.fixture  # not per module: the artifact store is set per test (conftest.py)
def below_zero(demo_models, generated) -> list[dict]:
    """Five generated instances the likes model itself answers below 0, then two above."""
    raw = raw_outputs(demo_models, LIKES, generated)
    negative, positive = numpy.flatnonzero(raw < 0), numpy.flatnonzero(raw > 0)
    return [generated[i] for i in [*negative[:5], *positive[:2]]]


def registered_copy(demo_models, name: str, *, schema: dict | None = None) -> MLModelVersion:
    """Another version of `name` over the same stored artifact (nothing serialized again),
    with `schema` (default: the same), approved: in staging."""
    of = demo_models.version(name)
    version = registration.model_version_register(
        name=name, task=of.model.task, user=demo_models.people["user"],
        estimator=demo_models.estimator(name), feature_schema=schema or of.feature_schema,
        training_dataset_sha256=of.training_dataset_sha256, training_samples=of.training_samples,
        training_duration_seconds=0.0, hyperparameters=of.hyperparameters, metrics=of.metrics,
        reference_profile=of.reference_profile,
        bundle=artifacts.PreparedBundle(manifest=of.artifact_manifest, files={}))
    return registry.model_version_approve(version=version, user=demo_models.people["reviewer"],
                                          notes="approved in test")


def without_bound(schema: dict) -> dict:
    """The schema as versions stored before output bounds existed hold it."""
    return {key: value for key, value in schema.items() if key != "output_bounds"}


def assert_adds_up_with_bound(explanation: dict) -> None:
    bound = explanation["bound"]
    raw = explanation["base_value"] + sum(explanation["contributions"].values())
    assert raw == pytest.approx(bound["raw_value"], rel=1e-6, abs=1e-6)
    assert bound["adjustment"] == explanation["value"] - bound["raw_value"]
    assert raw + bound["adjustment"] == pytest.approx(explanation["value"], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", [LIKES, COMMENTS])
def test_count_model_never_answers_below_zero_over_10000_valid_instances(demo_models,
                                                                         generated, name):
    raw = raw_outputs(demo_models, name, generated)
    answered = []
    for start in range(0, GENERATED, settings.PREDICT_MAX_BATCH):
        result = serving.prediction_make(
            model_name=name, instances=generated[start:start + settings.PREDICT_MAX_BATCH],
            request_id=f"bounds-{start}")
        answered += [prediction["value"] for prediction in result.predictions]

    assert demo_models.schema(name)["output_bounds"] == {"lower": 0}
    assert (raw < 0).sum() >= 100  # without the bound, the test would prove nothing
    assert len(answered) == GENERATED
    assert min(answered) == 0.0
    assert answered == pytest.approx(numpy.maximum(raw, 0.0).tolist(), rel=1e-9, abs=1e-9)
    logged = PredictionLog.objects.filter(model_name=name).values_list("value", flat=True)
    assert min(logged) == 0.0


def test_every_arm_answers_within_the_bound(demo_models, below_zero):
    deployer = demo_models.people["deployer"]
    challenger = registry.model_version_deploy(
        version=registered_copy(demo_models, LIKES), user=deployer, traffic=50, notes="A/B")
    shadow = registry.model_version_deploy(
        version=registered_copy(demo_models, LIKES), user=deployer, shadow=True, notes="shadow")

    arms = [Challenger(version_id=challenger.pk, traffic_percentage=50)]
    keys = [f"user-{i}" for i in range(40)]
    reaching = {challenger_for(routing_key=key, model_name=LIKES, challengers=arms): key
                for key in keys}  # a key reaching the champion (None), one the challenger
    for key in reaching.values():
        serving.prediction_make(model_name=LIKES, instances=below_zero, request_id=key,
                                routing_key=key)
    pinned = serving.prediction_make_pinned(model_name=LIKES, version=challenger.version,
                                            instances=below_zero, request_id="pinned-1")

    logs = PredictionLog.objects.filter(model_name=LIKES)
    assert set(logs.values_list("arm", flat=True)) == {"champion", "challenger", "shadow",
                                                       "pinned"}
    assert logs.filter(model_version=shadow).count() == 2 * len(below_zero)
    assert min(logs.values_list("value", flat=True)) == 0.0
    assert [p["value"] for p in pinned.predictions][:5] == [0.0] * 5


def test_explanation_of_a_bounded_answer_adds_up_to_it_and_reports_the_bound(demo_models,
                                                                           below_zero):
    raw = raw_outputs(demo_models, LIKES, below_zero)

    result = serving.explanation_make(model_name=LIKES, instances=below_zero,
                                      request_id="explain-bounded")

    bounded, unchanged = result.explanations[:5], result.explanations[5:]
    for explanation, value in zip(bounded, raw[:5], strict=True):
        assert explanation["value"] == 0.0
        assert explanation["bound"]["lower"] == 0.0
        assert explanation["bound"]["raw_value"] == pytest.approx(value, rel=1e-9, abs=1e-9)
        assert explanation["bound"]["adjustment"] > 0
        assert_adds_up_with_bound(explanation)
    for explanation, value in zip(unchanged, raw[5:], strict=True):
        assert "bound" not in explanation
        assert explanation["value"] == pytest.approx(value, rel=1e-9)
        assert value > 0
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["value"], rel=1e-6)


def test_explanation_by_id_adds_up_to_the_logged_bounded_answer(demo_models, api_client,
                                                                below_zero):
    (prediction,) = serving.prediction_make(model_name=LIKES, instances=below_zero[:1],
                                            request_id="explain-by-id").predictions

    response = api_client.get(
        f"/api/v1/predictions/{prediction['prediction_id']}/explanation")

    assert response.status_code == 200, response.json()
    explanation = response.json()["explanation"]
    logged = PredictionLog.objects.get(prediction_id=prediction["prediction_id"])
    assert logged.value == prediction["value"] == explanation["value"] == 0.0
    assert explanation["bound"]["adjustment"] > 0
    assert_adds_up_with_bound(explanation)


def test_version_registered_without_a_bound_answers_below_zero_as_before(demo_models,
                                                                         below_zero):
    version = registered_copy(demo_models, LIKES,
                              schema=without_bound(demo_models.schema(LIKES)))
    raw = raw_outputs(demo_models, LIKES, below_zero)

    answered = serving.prediction_make_pinned(model_name=LIKES, version=version.version,
                                              instances=below_zero, request_id="unbounded-1")
    (explanation, *_) = serving.explanation_make_pinned(
        model_name=LIKES, version=version.version, instances=below_zero).explanations

    assert "output_bounds" not in version.feature_schema
    values = [prediction["value"] for prediction in answered.predictions]
    assert values == pytest.approx(raw.tolist(), rel=1e-9, abs=1e-9)
    assert min(values) < 0
    assert "bound" not in explanation
    assert explanation["value"] == pytest.approx(raw[0], rel=1e-9)
    assert explanation["value"] < 0
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(explanation["value"], rel=1e-6, abs=1e-6)


def test_dropping_the_bound_outside_the_registry_breaks_the_audit_chain(demo_models):
    version = demo_models.version(LIKES)

    MLModelVersion.objects.filter(pk=version.pk).update(
        feature_schema=without_bound(version.feature_schema))

    result = selectors.audit_verify_model(model=version.model)
    assert not result.ok
    assert "schema_sha256" in result.problem
