"""The reviewer's evidence in the version admin: the list with status, primary metric and
gate badges, and the change view's sections (metrics beside production, gates, fairness,
importance, manifest, audit history with chain status, model card)."""


import numpy
import pandas
import pytest
from django.contrib.auth import get_user_model
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from core.ml import fairness
from core.ml import gates as validation
from core.ml.diagnostics import residual_summary
from core.ml.profile import reference_profile_build
from core.ml.schema import feature_spec
from mlregistry import artifacts, registration, services
from mlregistry.models import MLModelVersion, ModelTransition
from tests.factories import (
    DRIFT_SCHEMA,
    drift_frame,
    drift_outputs,
    register_profiled_version,
    tiny_estimator,
)
from tests.pages import section

CHANGELIST = "/admin/mlregistry/mlmodelversion/"
SCHEMA = {"target": "likes", "features": [
    feature_spec(name="followers", dtype="float"),
    feature_spec(name="hashtags", dtype="int"),
    feature_spec(name="region", dtype="category", protected=True, input=False),
]}
PRODUCTION_METRICS = {"r2": 0.9, "mae": 1.0, "rmse": 1.5}
DATASET_SHA256 = "d" * 64


def region_report() -> dict:
    """Regression fairness over three regions; "islands" has too few rows to compare."""
    groups = numpy.array(["north"] * 30 + ["south"] * 30 + ["islands"] * 5)
    predicted = numpy.where(groups == "north", 10.0, numpy.where(groups == "south", 5.0, 7.0))
    return fairness.fairness_report(task="regression", protected={"region": groups},
                                    y_true=predicted + 1.0, y_pred=predicted, min_group_size=20)


def register(user, *, slope: float, metrics: dict, production_metrics: dict | None,
             importance: dict | None = None, report: dict | None = None,
             name: str = "engagement-likes", client_id: str = ""):
    gates = validation.gates_evaluate(task="regression", metrics=metrics,
                                      production_metrics=production_metrics)
    gates.update(validation.fairness_gate(report))
    return registration.model_version_register(
        name=name, task="regression", user=user, estimator=tiny_estimator(slope),
        feature_schema=SCHEMA, training_dataset_sha256=DATASET_SHA256, training_samples=65,
        training_duration_seconds=0.5, hyperparameters={"slope": slope}, metrics=metrics,
        reference_profile={"features": {}}, fairness_report=report, gate_results=gates,
        training_report={"dataset": "posts.csv", "rows_read": 80, "train_rows": 52,
                         "validation_rows": 13, **({} if production_metrics is None else {
                             # As training records it: production on these validation rows.
                             "production_comparison": {"version": "1.0.0", "rows": 13,
                                                       "metrics": production_metrics,
                                                       "reason": ""}})},
        description="Likes a post will get.", global_importance=importance, client_id=client_id,
    )


@pytest.fixture
def production(people):
    version = register(people["user"], slope=1.0, metrics=PRODUCTION_METRICS,
                       production_metrics=None,
                       importance={"method": "tree", "output_space": "raw", "rows": 13,
                                   "features": {"followers": 4.0, "hashtags": 1.0}})
    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="looks right")
    return services.model_version_deploy(version=version, user=people["deployer"],
                                         notes="ship it")


@pytest.fixture
def candidate(production, people):
    """Worse than production by more than the margin: the validation gate fails; the
    region parity ratio (5 / 10) fails the fairness gate."""
    return register(people["user"], slope=2.0, metrics={"r2": 0.8, "mae": 0.9, "rmse": 1.5},
                    production_metrics=PRODUCTION_METRICS, report=region_report(),
                    importance={"method": "tree", "output_space": "raw", "rows": 13,
                                "features": {"followers": 2.0, "hashtags": 3.0}})


@pytest.fixture
def superuser_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    return client


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def change_page(client, version):
    response = client.get(f"{CHANGELIST}{version.pk}/change/")
    assert response.status_code == 200
    return response


# --- list view ----------------------------------------------------------------------------


def test_list_shows_columns_and_failed_gate_badge(superuser_client, candidate, production):
    response = superuser_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Model", "Version", "Status", "Client", "Primary metric", "Gates",
                   "Created", "Approved"):
        assert f">{header}<" in html
    assert '<span class="badge status-production">production</span>' in html
    assert '<span class="badge status-testing">testing</span>' in html
    assert "r2 0.8000" in html and "r2 0.9000" in html
    # Compact badges: a mark and the gate's name, the state in words in the tooltip.
    assert '<span class="badge gate-failed" title="validation: failed' in html
    assert ">✗ validation</span>" in html
    assert '<span class="badge gate-failed" title="fairness: failed' in html
    assert ">✗ fairness</span>" in html
    # Production had nothing to beat.
    assert '<span class="badge gate-not_applicable" title="validation: not applicable' in html
    assert ">– validation</span>" in html


def test_list_shows_overridden_gate_after_approval_with_justification(
        superuser_client, candidate, reviewer):
    services.model_version_approve(version=candidate, user=reviewer, notes="accepted",
                                   override_justification="new data source")

    html = superuser_client.get(CHANGELIST).content.decode()

    assert '<span class="badge gate-overridden" title="validation: overridden' in html
    assert ">! validation</span>" in html


def test_list_filters_by_client(superuser_client, candidate, production, people):
    acme = register(people["user"], slope=3.0, metrics=PRODUCTION_METRICS,
                    production_metrics=None, name="engagement-likes--acme", client_id="acme")

    only_acme = superuser_client.get(CHANGELIST, {"client": "acme"})
    only_global = superuser_client.get(CHANGELIST, {"client": "(global)"})

    assert list(only_acme.context["cl"].result_list) == [acme]
    assert set(only_global.context["cl"].result_list) == {candidate, production}
    assert '<td class="field-client">acme</td>' in only_acme.content.decode()


def test_list_searches_by_sha256(superuser_client, candidate, production):
    response = superuser_client.get(CHANGELIST, {"q": candidate.model_sha256})

    assert list(response.context["cl"].result_list) == [candidate]


def test_list_query_count_does_not_grow_with_versions(superuser_client, production, people,
                                                      django_assert_max_num_queries):
    for slope in range(3, 15):
        register(people["user"], slope=float(slope), metrics=PRODUCTION_METRICS,
                 production_metrics=PRODUCTION_METRICS)

    # 13 rows: one query per row for any related object would blow the bound.
    with django_assert_max_num_queries(10):
        response = superuser_client.get(CHANGELIST)

    assert response.context["cl"].result_count == 13


# --- change view --------------------------------------------------------------------------


def test_change_view_shows_metrics_beside_production(reviewer_client, candidate):
    text = section(change_page(reviewer_client, candidate), "metrics-comparison")

    assert "production version 1.0.0" in text
    assert "r2 (primary) ↑ 0.8000 0.9000 -0.1000 production" in text
    assert "mae ↓ 0.9000 1.0000 -0.1000 this version" in text
    assert "rmse ↓ 1.5000 1.5000 0.0000 equal" in text


def test_change_view_says_different_validation_sets_instead_of_a_verdict(
        reviewer_client, candidate):
    MLModelVersion.objects.filter(pk=candidate.pk).update(training_report={})

    text = section(change_page(reviewer_client, candidate), "metrics-comparison")

    assert "Different validation sets: production version 1.0.0's figures" in text
    assert "r2 (primary) ↑ 0.8000 0.9000 -0.1000 –" in text


def test_change_view_shows_gate_results(reviewer_client, candidate):
    text = section(change_page(reviewer_client, candidate), "gate-results")

    assert "validation failed" in text
    assert "margin 0.02" in text
    assert "candidate r2: 0.8000" in text and "production r2: 0.9000" in text
    assert "fairness failed" in text
    assert "region parity ratio: 0.5000 below" in text


def test_change_view_shows_override_justification(reviewer_client, candidate, reviewer):
    services.model_version_approve(version=candidate, user=reviewer, notes="accepted",
                                   override_justification="seasonal data, see ticket 42")

    text = section(change_page(reviewer_client, candidate), "gate-results")

    assert "validation overridden" in text
    assert "Override justification: seasonal data, see ticket 42" in text


def test_change_view_shows_fairness_table_with_small_group(reviewer_client, candidate):
    response = change_page(reviewer_client, candidate)
    text = section(response, "fairness-table")

    assert "Groups with fewer than 20 rows are marked small" in text
    assert "Parity ratio 0.5000, parity difference 5.0000" in text
    assert "north 30 10 11" in text
    assert "south 30 5 6" in text
    assert "islands 5 7 8 small" in text
    assert 'class="fairness-group small-group" data-group="islands"' in response.content.decode()


def test_change_view_shows_manifest_hashes_and_environment(reviewer_client, candidate):
    text = section(change_page(reviewer_client, candidate), "artifact-manifest")

    assert candidate.model_sha256 in text
    for entry in candidate.artifact_manifest["artifacts"]:
        assert entry["sha256"] in text
        assert entry["path"] in text
    assert f"scikit-learn {candidate.artifact_manifest['environment']['scikit-learn']}" in text


def test_change_view_shows_history_with_intact_chain(reviewer_client, production):
    response = change_page(reviewer_client, production)
    text = section(response, "transition-history")

    assert "Audit chain intact: 4 rows of engagement-likes verified" in text
    for reason in ("registered", "validated", "approved", "deployed"):
        assert f'data-reason="{reason}"' in response.content.decode()
    assert "looks right" in text and "ship it" in text


def test_change_view_names_broken_row_after_tampering(reviewer_client, candidate, production):
    tampered = ModelTransition.objects.get(version=production, reason="approved")
    ModelTransition.objects.filter(pk=tampered.pk).update(notes="approved without looking")

    response = change_page(reviewer_client, candidate)
    text = section(response, "transition-history")

    assert "Audit chain broken" in text
    assert (f"at row id={tampered.pk} (sequence {tampered.sequence}, version 1.0.0): content "
            "does not match its seal") in text
    assert section(response, "chain-status").startswith("Audit chain broken")


def test_change_view_marks_broken_row_of_this_version(reviewer_client, production):
    tampered = ModelTransition.objects.get(version=production, reason="deployed")
    ModelTransition.objects.filter(pk=tampered.pk).update(traffic_after=42)

    html = change_page(reviewer_client, production).content.decode()

    assert (f'class="transition-row broken-row" data-sequence="{tampered.sequence}"') in html


def test_change_view_renders_model_card(reviewer_client, candidate):
    text = section(change_page(reviewer_client, candidate), "model-card")

    for heading in ("Purpose", "Data", "Metrics against production", "Fairness", "Gates",
                    "Approvals", "Environment", "Feature importance"):
        assert heading in text
    assert "Likes a post will get." in text
    assert f"Training dataset SHA256: {DATASET_SHA256}" in text
    assert "Training samples: 65 (train 52, validation 13)" in text
    assert "Not approved." in text


def test_change_view_draws_importance_beside_production(reviewer_client, candidate):
    response = change_page(reviewer_client, candidate)
    text = section(response, "global-importance")
    html = response.content.decode()

    assert "beside production version 1.0.0's" in text
    assert html.count('<g class="importance-row"') == 2
    # Largest first (hashtags 3.0), bars scaled to the largest value of both versions.
    assert html.index('data-feature="hashtags"') < html.index('data-feature="followers"')
    assert 'class="bar-candidate" x="190" y="26.0" width="285.0"' in html  # 3.0 of 4.0: 285 of 380
    assert "hashtags, production: 1.00" in html
    # The axis: ticks 0 to 4 (the largest value, production's followers) with gridlines.
    assert html.count('<text class="tick"') == 5 and html.count('<line class="gridline"') == 5
    assert "mean |SHAP contribution| (raw output)" in text


def test_change_view_prints_every_value_when_one_feature_dominates(reviewer_client, people):
    version = register(people["user"], slope=5.0, metrics=PRODUCTION_METRICS,
                       production_metrics=None,
                       importance={"method": "tree", "output_space": "raw", "rows": 13,
                                   "features": {"followers": 5062.85, "hashtags": 19.3337}})

    text = section(change_page(reviewer_client, version), "global-importance")

    assert "followers outweighs every other feature (262 times the next)" in text
    assert "5,060" in text and "19.3" in text


def test_change_view_without_importance_says_so(reviewer_client, production, people):
    version = register(people["user"], slope=5.0, metrics=PRODUCTION_METRICS,
                       production_metrics=PRODUCTION_METRICS)

    text = section(change_page(reviewer_client, version), "global-importance")

    assert "Not computed for this version" in text


def test_change_view_loads_no_artifact(reviewer_client, candidate, monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("the evidence page must not read artifacts")

    monkeypatch.setattr(artifacts, "bundle_load", refuse)
    monkeypatch.setattr(artifacts, "bundle_verify", refuse)

    response = change_page(reviewer_client, candidate)

    assert b'id="model-card"' in response.content


def inference_note(client, version) -> str:
    return section(change_page(client, version), "model-file")


def test_change_view_of_a_candidate_loads_nothing_to_tell_its_inference_path(
        reviewer_client, candidate):
    assert "decided when serving loads it (not loaded: " in inference_note(reviewer_client,
                                                                           candidate)


def test_change_view_says_an_estimator_without_a_pipeline_answers_itself(reviewer_client,
                                                                         production):
    assert ("Inference path: the pipeline itself (a pipeline step the compiler does not "
            "handle)") in inference_note(reviewer_client, production)


def test_change_view_says_an_approved_recipe_pipeline_is_served_compiled(reviewer_client,
                                                                        people):
    frame = pandas.DataFrame({"followers": numpy.arange(40.0), "hashtags": numpy.arange(40) % 4})
    pipeline = Pipeline([
        ("prep", ColumnTransformer([("numeric", SimpleImputer(), ["followers", "hashtags"])])),
        ("model", LinearRegression())]).fit(frame, frame["followers"] * 3)
    version = registration.model_version_register(
        name="compiled-likes", task="regression", user=people["user"], estimator=pipeline,
        feature_schema=SCHEMA, training_dataset_sha256=DATASET_SHA256, training_samples=40,
        training_duration_seconds=0.1, hyperparameters={}, metrics=PRODUCTION_METRICS,
        reference_profile={"features": {}})
    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="approved")

    assert "Inference path: compiled: " in inference_note(reviewer_client, version)


# --- training details and distributions ---------------------------------------------------


def test_change_view_shows_the_training_split_instead_of_the_raw_report(reviewer_client,
                                                                        candidate):
    response = change_page(reviewer_client, candidate)
    text = section(response, "training-data")
    html = response.content.decode()

    assert "Dataset file posts.csv" in text
    assert "Rows read 80" in text
    assert "Training rows 52 (80 % of rows used)" in text
    assert "Validation rows 13 (20 % of rows used)" in text
    for field in ("training_report", "hyperparameters", "feature_schema"):
        assert f"field-{field}" not in html  # no read-only JSON field left in the fieldsets
    assert "&quot;validation_rows&quot;:" not in html and '"validation_rows":' not in html


def test_change_view_shows_hyperparameters_and_schema_as_tables(reviewer_client, candidate):
    response = change_page(reviewer_client, candidate)

    assert "slope 2.0" in section(response, "training-hyperparameters")
    schema = section(response, "feature-schema")
    assert "Target: likes." in schema
    assert "followers float yes no no any number" in schema
    assert "region category no yes no any (not enumerated)" in schema


def register_profiled_candidate(user, *, schema: dict, frame) -> MLModelVersion:
    """A testing version of drift-likes whose reference profile describes `frame`."""
    profile = reference_profile_build(frame=frame, schema=schema, outputs=drift_outputs(frame),
                                      seed=0)
    return registration.model_version_register(
        name="drift-likes", task="regression", user=user, estimator=tiny_estimator(),
        feature_schema=schema, training_dataset_sha256=DATASET_SHA256,
        training_samples=len(frame), training_duration_seconds=0.01, hyperparameters={},
        metrics={}, reference_profile=profile)


def test_change_view_draws_production_distribution_on_the_same_bins(reviewer_client, people):
    register_profiled_version(**people)
    candidate = register_profiled_candidate(
        people["user"], schema=DRIFT_SCHEMA, frame=drift_frame(n=1000, seed=1,
                                                               shift={"followers": 10_000.0}))

    response = change_page(reviewer_client, candidate)
    figure = section(response, "distribution-followers")

    assert "Training distributions against production" in section(response,
                                                                   "feature-distributions")
    # Production's followers all lie below the candidate's lowest decile edge.
    assert figure.count("production: 0.0 %") == 9
    assert figure.count("production: 100.0 %") == 1
    assert figure.count("this version: 10.0 %") == 10


def test_change_view_marks_a_feature_production_does_not_take(reviewer_client, people):
    register_profiled_version(**people)
    schema = {**DRIFT_SCHEMA, "features": [*DRIFT_SCHEMA["features"],
                                           feature_spec(name="mentions", dtype="int")]}
    frame = drift_frame(n=1000, seed=1).assign(mentions=numpy.arange(1000) % 5)
    candidate = register_profiled_candidate(people["user"], schema=schema, frame=frame)

    response = change_page(reviewer_client, candidate)

    assert "mentions int not in production" in section(response, "distribution-mentions")
    assert "not in production" not in section(response, "distribution-followers")


def test_change_view_of_production_draws_its_distributions_alone(reviewer_client, people):
    production = register_profiled_version(**people)

    response = change_page(reviewer_client, production)
    text = section(response, "feature-distributions")

    assert "This version is the production version" in text
    assert "production:" not in text
    assert "this version: 10.0 %" in section(response, "distribution-followers")


def test_change_view_draws_the_validation_residuals(reviewer_client, candidate):
    residuals = residual_summary(actual=[1.0, 2.5, 2.0, 4.5], predicted=[1.0, 2.0, 3.0, 4.0],
                                 sample_seed=0)
    MLModelVersion.objects.filter(pk=candidate.pk).update(training_report={
        **candidate.training_report, "validation_diagnostics": {
            "format": 1, "task": "regression", "rows": 4, "kind": "residuals",
            "residuals": residuals}})

    page = change_page(reviewer_client, candidate)

    text = section(page, "validation-diagnostics")
    assert "Computed on the 4 validation rows" in text
    assert page.content.decode().count('class="validation-chart residual-chart"') == 1


def test_change_view_of_a_version_without_diagnostics_says_they_were_not_recorded(
        reviewer_client, production):
    assert "were not recorded for this version" in section(change_page(reviewer_client,
                                                                       production),
                                                           "validation-diagnostics")
