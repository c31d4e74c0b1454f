"""Estimated performance before labels (monitoring.estimation, docs/monitoring.md#estimated-
performance): models registered through `register_model`'s service, deployed, their logged
predictions estimated by CBPE (binary) and DLE (regression) against the realized figures,
and the alert on a shifted window before any label is posted."""

from datetime import timedelta
from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import call_command
from django.utils import timezone
from sklearn.linear_model import LinearRegression, LogisticRegression

from core.ml import estimation as estimators
from mlregistry import artifacts, services
from monitoring.estimation import estimation_evaluate, live_performance_check
from monitoring.models import Alert, EstimatedPerformanceReport, PerformanceReport
from monitoring.tasks import performance_check_task
from tests.factories import artifact_tamper, labelled_logs_create, register_deployed_classifier
from training.registration import model_version_register_external

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_alert_delivery_channels")]


def _sigmoid(x):
    return 1.0 / (1.0 + numpy.exp(-x))


def _inputs(rng, n, *, scale=1.0, x2_mean=0.0):
    return pandas.DataFrame({"x1": rng.normal(0.0, scale, n),
                             "x2": rng.normal(x2_mean, scale, n)})


def _deployed(tmp_path, people, *, name, task, estimator, frame, target):
    artifact, data = tmp_path / f"{name}.skops", tmp_path / f"{name}.csv"
    skops.io.dump(estimator, artifact)
    frame.to_csv(data, index=False)
    version = model_version_register_external(
        name=name, task=task, user=people["user"], artifact_path=str(artifact),
        data_path=str(data), target=target)
    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="approved")
    return services.model_version_deploy(version=version, user=people["deployer"],
                                         notes="deployed in test")


@pytest.fixture
def classifier(tmp_path, people):
    """A logistic regression that is its data's true model: calibrated probabilities."""
    rng = numpy.random.default_rng(0)
    frame = _inputs(rng, 3000)
    frame["converted"] = (rng.random(len(frame))
                          < _sigmoid(2 * frame["x1"] - frame["x2"])).astype(int)
    estimator = LogisticRegression().fit(frame[["x1", "x2"]][:2000], frame["converted"][:2000])
    version = _deployed(tmp_path, people, name="lead-score", task="binary_classification",
                        estimator=estimator, frame=frame[2000:], target="converted")
    return version, estimator


def _noise_sd(x2):
    return 0.5 + numpy.abs(x2)


@pytest.fixture
def regressor(tmp_path, people):
    """A linear regression whose errors grow with |x2| (which it cannot see in its mean)."""
    rng = numpy.random.default_rng(1)
    frame = _inputs(rng, 3000)
    frame["spend"] = 3 * frame["x1"] + rng.normal(0.0, 1.0, len(frame)) * _noise_sd(frame["x2"])
    estimator = LinearRegression().fit(frame[["x1", "x2"]][:2000], frame["spend"][:2000])
    version = _deployed(tmp_path, people, name="spend", task="regression",
                        estimator=estimator, frame=frame[2000:], target="spend")
    return version, estimator


def _log_classifier(version, estimator, inputs, *, labelled, created_at, seed):
    probability = estimator.predict_proba(inputs)[:, 1]
    actual = (numpy.random.default_rng(seed).random(len(inputs)) < probability).astype(int)
    labelled_logs_create(
        version=version, values=(probability > 0.5).astype(int).tolist(),
        actuals=actual.tolist() if labelled else [None] * len(inputs),
        probabilities=[{"0": 1 - p, "1": p} for p in probability.tolist()],
        features=inputs.to_dict("records"), created_at=created_at)


def _log_regressor(version, estimator, inputs, *, labelled, created_at, seed):
    predicted = estimator.predict(inputs)
    actual = (3 * inputs["x1"].to_numpy()
              + numpy.random.default_rng(seed).normal(0.0, 1.0, len(inputs))
              * _noise_sd(inputs["x2"].to_numpy()))
    labelled_logs_create(
        version=version, values=predicted.tolist(),
        actuals=actual.tolist() if labelled else [None] * len(inputs),
        features=inputs.to_dict("records"), created_at=created_at)


def _within_band(figure, realized):
    return figure["lower"] <= realized <= figure["upper"]


def test_registration_stores_the_cbpe_reference_and_no_calibrator_for_calibrated_scores(
        classifier):
    version, _ = classifier

    reference = version.training_report["estimation"]

    assert (reference["method"], reference["rows"]) == ("cbpe", 1000)
    assert reference["calibration"]["ece"] <= reference["calibration"]["max_ece"]
    assert reference["calibration"]["calibrator"] is None
    assert reference["artifacts"] == []
    assert set(reference["sampling_error"]) == set(estimators.CBPE_METRICS)


def test_cbpe_estimate_holds_the_realized_figures_of_a_calibrated_window(classifier):
    version, estimator = classifier
    now = timezone.now()
    _log_classifier(version, estimator, _inputs(numpy.random.default_rng(2), 800),
                    labelled=True, created_at=now - timedelta(hours=1), seed=3)

    [checked] = live_performance_check(model_name="lead-score", now=now)

    estimated, realized = checked.estimated.estimated, checked.realized.metrics
    assert (checked.arm, checked.estimated.n_predictions, checked.realized.n_labelled) == (
        "champion", 800, 800)
    assert _within_band(estimated["accuracy"], realized["accuracy"])
    assert _within_band(estimated["roc_auc"], realized["roc_auc"])
    assert _within_band(estimated["f1"], realized["f1"])
    assert not Alert.objects.exists()


def test_cbpe_estimate_falls_and_alerts_on_a_shifted_window_before_any_label(classifier):
    version, estimator = classifier
    now = timezone.now()
    # Near the decision boundary the model can hardly rank: it is worse there.
    _log_classifier(version, estimator, _inputs(numpy.random.default_rng(4), 600, scale=0.1),
                    labelled=False, created_at=now - timedelta(hours=1), seed=5)

    performance_check_task()

    assert not PerformanceReport.objects.exists()  # no labels yet
    report = EstimatedPerformanceReport.objects.get()
    assert report.estimated["roc_auc"]["value"] < 0.8 * version.metrics["roc_auc"]
    assert report.estimated["accuracy"]["value"] < version.metrics["accuracy"]
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.version) == (
        "estimated_performance", "warning", version.version)
    assert alert.payload["metric"] == "roc_auc" and alert.payload["method"] == "cbpe"
    assert alert.payload["estimated_performance_report_id"] == report.pk


def test_registration_stores_the_dle_error_models_in_the_bundle(regressor):
    version, _ = regressor

    reference = version.training_report["estimation"]
    loaded = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)

    assert reference["method"] == "dle"
    assert reference["artifacts"] == [estimators.ABSOLUTE_ERROR_MODEL,
                                      estimators.SQUARED_ERROR_MODEL]
    names = {entry["name"] for entry in version.artifact_manifest["artifacts"]}
    assert names == {"estimator", "reference_profile", *reference["artifacts"]}
    assert set(loaded.objects) == names


def test_dle_estimate_holds_the_realized_error_and_alerts_on_a_shifted_input(regressor):
    version, estimator = regressor
    now = timezone.now()
    _log_regressor(version, estimator, _inputs(numpy.random.default_rng(6), 800),
                   labelled=True, created_at=now - timedelta(hours=2), seed=7)

    [checked] = live_performance_check(model_name="spend", now=now)

    estimated, realized = checked.estimated.estimated, checked.realized.metrics
    assert _within_band(estimated["mae"], realized["mae"])
    assert _within_band(estimated["rmse"], realized["rmse"])
    assert not Alert.objects.exists()

    # Later, inputs where the model errs more, and no label yet.
    later = now + timedelta(hours=1)
    shifted = _inputs(numpy.random.default_rng(8), 800, x2_mean=3.0)
    _log_regressor(version, estimator, shifted, labelled=False,
                   created_at=later - timedelta(minutes=30), seed=9)

    reports = estimation_evaluate(version_id=version.pk, now=later)

    assert reports[0].estimated["mae"]["value"] > estimated["mae"]["value"]
    alert = Alert.objects.get()
    assert (alert.kind, alert.payload["metric"], alert.payload["method"]) == (
        "estimated_performance", "mae", "dle")
    assert alert.payload["estimated"] > 1.2 * version.metrics["mae"]


def test_an_error_model_that_fails_verification_is_never_loaded(regressor):
    version, estimator = regressor
    _log_regressor(version, estimator, _inputs(numpy.random.default_rng(12), 50),
                   labelled=False, created_at=timezone.now() - timedelta(hours=1), seed=13)
    path, original = artifact_tamper(version, estimators.SQUARED_ERROR_MODEL)
    try:
        assert estimation_evaluate(version_id=version.pk) == []
    finally:
        path.write_bytes(original)

    assert not EstimatedPerformanceReport.objects.exists()


def test_versions_stored_before_estimation_have_none(people):
    version = register_deployed_classifier(**people)
    labelled_logs_create(version=version, values=[1] * 3, actuals=[None] * 3,
                         probabilities=[{"0": 0.2, "1": 0.8}] * 3,
                         created_at=timezone.now() - timedelta(hours=1))

    assert estimation_evaluate(version_id=version.pk) == []
    out = StringIO()
    call_command("check_performance", "--model", "lead-scoring", stdout=out)

    assert out.getvalue().strip() == (
        f"lead-scoring {version.version}: realized: no labelled predictions; estimated: not "
        "available (no estimation reference (stored before estimation, or too few validation "
        "rows))")


def test_check_performance_prints_realized_beside_estimated(classifier):
    version, estimator = classifier
    _log_classifier(version, estimator, _inputs(numpy.random.default_rng(10), 100),
                    labelled=True, created_at=timezone.now() - timedelta(hours=1), seed=11)
    out = StringIO()

    call_command("check_performance", "--model", "lead-score", stdout=out)

    line = out.getvalue().strip()
    assert line.startswith(f"lead-score {version.version} champion: realized accuracy=")
    assert "(n_labelled=100); estimated accuracy=" in line and "(cbpe, n=100)" in line


@pytest.fixture
def api(db):
    from rest_framework.test import APIClient

    from predictions import services as serving

    _, key = serving.api_key_create(name="performance tests")
    return APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")


def test_performance_endpoint_gives_realized_beside_estimated_per_live_version(classifier,
                                                                               api):
    version, estimator = classifier
    now = timezone.now()
    _log_classifier(version, estimator, _inputs(numpy.random.default_rng(14), 60),
                    labelled=True, created_at=now - timedelta(hours=1), seed=15)
    _log_classifier(version, estimator, _inputs(numpy.random.default_rng(16), 40),
                    labelled=False, created_at=now - timedelta(hours=1), seed=17)
    live_performance_check(model_name="lead-score", now=now)

    response = api.get("/api/v1/models/lead-score/performance")

    assert response.status_code == 200, response.content
    body = response.json()
    [entry] = body["versions"]
    assert (body["model"], entry["version"], entry["role"], entry["estimation_unavailable"]) == (
        "lead-score", version.version, "champion", None)
    [arm] = entry["arms"]
    estimated = EstimatedPerformanceReport.objects.get()
    assert arm["arm"] == "champion" and arm["n_predictions"] == 100
    assert arm["realized"]["n_labelled"] == 60
    assert arm["realized"]["metrics"] == PerformanceReport.objects.get().metrics
    assert arm["estimated"] == estimated.estimated
    assert set(arm["estimated"]["roc_auc"]) == {"value", "lower", "upper", "method"}


def test_performance_endpoint_says_why_a_version_has_no_estimate(people, api):
    register_deployed_classifier(**people)

    body = api.get("/api/v1/models/lead-scoring/performance").json()

    assert body["versions"][0]["estimation_unavailable"].startswith("no estimation reference")
    assert body["versions"][0]["arms"] == []


def test_performance_endpoint_refuses_query_parameters_and_unknown_models(classifier, api):
    refused = api.get("/api/v1/models/lead-score/performance?version=1.0.0")
    unknown = api.get("/api/v1/models/nothing-here/performance")

    assert (refused.status_code, refused.json()["error"]["code"]) == (
        400, "invalid_query_parameter")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
