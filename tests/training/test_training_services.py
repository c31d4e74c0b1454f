"""Training through the service, the command and the Celery job."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mlregistry import services
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from tests.factories import answers_identical, register_version
from tests.training.conftest import tiny_frame
from training import services as training_services
from training.models import TrainingDataset, TrainingJob


def train(*args) -> str:
    out = StringIO()
    call_command("train_model", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def registry_counts() -> tuple:
    return (MLModel.objects.count(), MLModelVersion.objects.count(),
            ModelTransition.objects.count(), TrainingDataset.objects.count())


def test_train_model_registers_a_testing_version_and_prints_it_last(tiny_recipe, tiny_csv,
                                                                    data_scientist):
    output = train("tiny-likes", "--data", str(tiny_csv), "--user", "dana")

    version = MLModelVersion.objects.get(model__name="tiny-likes")
    assert output.splitlines()[-1] == version.version == "1.0.0"
    assert version.status == Status.TESTING
    assert version.created_by == data_scientist
    assert version.training_report["rows_used"] == 200
    assert version.hyperparameters["recipe"] == "tiny-likes"
    assert set(version.gate_results) == {"validation", "fairness"}
    assert TrainingDataset.objects.get().sha256 == version.training_dataset_sha256


def test_retrain_on_the_registered_dataset_bumps_the_minor_version(tiny_recipe, tiny_csv,
                                                                   data_scientist):
    train("tiny-likes", "--data", str(tiny_csv), "--user", "dana")

    output = train("tiny-likes", "--user", "dana")

    assert output.splitlines()[-1] == "1.1.0"
    assert TrainingDataset.objects.count() == 1


def test_same_data_and_seed_give_the_same_estimator(tiny_recipe, tiny_csv, data_scientist):
    train("tiny-likes", "--data", str(tiny_csv), "--user", "dana", "--seed", "3")
    train("tiny-likes", "--user", "dana", "--seed", "3")

    first, second = MLModelVersion.objects.order_by("pk")
    assert answers_identical(first, second)


def test_train_model_for_a_client_makes_a_client_model(tiny_recipe, tiny_csv, data_scientist):
    train("tiny-likes", "--data", str(tiny_csv), "--client", "acme", "--user", "dana")

    model = MLModel.objects.get(name="tiny-likes--acme")
    assert model.client_id == "acme"
    assert model.global_model.name == "tiny-likes"
    assert model.versions.get().training_report["rows_for_client"] < 200


def test_train_model_for_a_client_with_too_few_rows_changes_nothing(tiny_recipe, tmp_path,
                                                                    data_scientist):
    frame = tiny_frame()
    frame.loc[:4, "client_id"] = "tiny-client"
    path = tmp_path / "posts.csv"
    frame.to_csv(path, index=False)
    before = registry_counts()

    with pytest.raises(CommandError, match="insufficient_data: tiny-likes needs at least 20 rows; "
                                           "client tiny-client has 5"):
        train("tiny-likes", "--data", str(path), "--client", "tiny-client", "--user", "dana")

    assert registry_counts() == before


def test_train_model_without_any_dataset_fails(tiny_recipe, data_scientist):
    with pytest.raises(CommandError, match="no dataset is registered for tiny-likes"):
        train("tiny-likes", "--user", "dana")


def test_train_model_unknown_recipe_fails(db):
    with pytest.raises(CommandError, match="recipe_not_found"):
        train("no-such-recipe")


def test_train_model_needs_the_register_permission(tiny_recipe, tiny_csv, reviewer):
    with pytest.raises(CommandError, match="permission_denied"):
        train("tiny-likes", "--data", str(tiny_csv), "--user", "rita")
    assert registry_counts() == (0, 0, 0, 0)


def test_train_model_defaults_to_the_system_account(tiny_recipe, tiny_csv, db):
    train("tiny-likes", "--data", str(tiny_csv))

    assert MLModelVersion.objects.get().created_by.username == "pulselytics-system"


def candidate_beside_unreadable_production(tiny_csv, *, data_scientist, reviewer, deployer
                                           ) -> tuple[MLModelVersion, MLModelVersion]:
    """(production, candidate): a production version claiming r2 1.5 whose schema (the
    factories') has features the tiny recipe's data lacks, and a tiny-likes version trained
    beside it."""
    production = register_version(user=data_scientist, name="tiny-likes", metrics={"r2": 1.5})
    services.model_version_approve(version=production, user=reviewer, notes="ok")
    services.model_version_deploy(version=production, user=deployer)
    train("tiny-likes", "--data", str(tiny_csv), "--user", "dana")
    return production, MLModelVersion.objects.get(model__name="tiny-likes",
                                                  status=Status.TESTING)


def test_candidate_worse_than_production_fails_the_gate_and_needs_justification(
        tiny_recipe, tiny_csv, data_scientist, reviewer, deployer):
    _, candidate = candidate_beside_unreadable_production(
        tiny_csv, data_scientist=data_scientist, reviewer=reviewer, deployer=deployer)

    assert candidate.gate_results["validation"]["passed"] is False
    with pytest.raises(CommandError, match="gate_failed"):
        call_command("approve", "tiny-likes", candidate.version, "--user", "rita", "--notes", "ok")
    call_command("approve", "tiny-likes", candidate.version, "--user", "rita", "--notes", "ok",
                 "--override-justification", "production's figure was measured on other data",
                 stdout=StringIO())
    candidate.refresh_from_db()
    assert candidate.status == Status.STAGING


def test_training_job_runs_on_the_worker_and_reports_progress(
        tiny_recipe, tiny_csv, data_scientist, django_capture_on_commit_callbacks):
    dataset = training_services.dataset_register(model_name="tiny-likes", path=tiny_csv,
                                                 user=data_scientist)
    with django_capture_on_commit_callbacks(execute=True):
        job = training_services.training_job_create(recipe_name="tiny-likes",
                                                    user=data_scientist, dataset=dataset)

    job.refresh_from_db()
    assert (job.state, job.progress, job.stage) == (TrainingJob.State.SUCCEEDED, 100, "done")
    assert job.version.status == Status.TESTING


def test_second_training_job_for_the_same_model_is_refused(tiny_recipe, data_scientist):
    training_services.training_job_create(recipe_name="tiny-likes", user=data_scientist)

    with pytest.raises(training_services.TrainingInProgressError):
        training_services.training_job_create(recipe_name="tiny-likes", user=data_scientist)
    assert TrainingJob.objects.count() == 1


def test_failed_training_job_records_the_error_and_no_version(tiny_recipe, data_scientist,
                                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = training_services.training_job_create(recipe_name="tiny-likes", user=data_scientist)

    job.refresh_from_db()
    assert job.state == TrainingJob.State.FAILED
    assert "no dataset is registered" in job.error
    assert MLModelVersion.objects.count() == 0


def test_training_job_run_twice_does_nothing_the_second_time(tiny_recipe, tiny_csv, data_scientist,
                                                             django_capture_on_commit_callbacks):
    training_services.dataset_register(model_name="tiny-likes", path=tiny_csv, user=data_scientist)
    with django_capture_on_commit_callbacks(execute=True):
        job = training_services.training_job_create(recipe_name="tiny-likes", user=data_scientist)

    again = training_services.training_job_run(job_id=job.pk)

    assert again.state == TrainingJob.State.SUCCEEDED
    assert MLModelVersion.objects.count() == 1


def test_train_model_shows_progress_on_stderr(tiny_recipe, tiny_csv, data_scientist):
    err = StringIO()

    call_command("train_model", "tiny-likes", "--data", str(tiny_csv), "--user", "dana",
                 stdout=StringIO(), stderr=err)

    assert "tiny-likes: 100%" in err.getvalue()
    assert "registering" in err.getvalue()


def test_imputed_and_dropped_rows_are_counted_on_the_version(tiny_recipe, tmp_path,
                                                             data_scientist):
    frame = tiny_frame()
    frame.loc[:2, "followers"] = float("inf")
    frame.loc[3:4, "followers"] = None
    frame.loc[5:10, "likes"] = None
    path = tmp_path / "dirty.csv"
    frame.to_csv(path, index=False)

    train("tiny-likes", "--data", str(path), "--user", "dana")

    report = MLModelVersion.objects.get().training_report
    assert report["rows_without_target"] == 6
    assert report["imputed"] == {"followers": 5}
    assert report["rows_used"] == 194


def test_production_is_scored_on_the_candidates_validation_rows(
        tiny_recipe, tiny_csv, data_scientist, reviewer, deployer):
    train("tiny-likes", "--data", str(tiny_csv), "--user", "dana")
    first = MLModelVersion.objects.get(model__name="tiny-likes")
    services.model_version_approve(version=first, user=reviewer, notes="ok")
    services.model_version_deploy(version=first, user=deployer)

    train("tiny-likes", "--user", "dana")  # same data and seed: the same model again
    candidate = MLModelVersion.objects.get(model__name="tiny-likes", status=Status.TESTING)

    comparison = candidate.training_report["production_comparison"]
    assert (comparison["version"], comparison["rows"]) == (
        first.version, candidate.training_report["validation_rows"])
    assert comparison["metrics"] == candidate.metrics  # same model, same rows
    gate = candidate.gate_results["validation"]
    assert gate["production"] == comparison["metrics"][gate["metric"]]


def test_a_production_version_that_cannot_read_the_rows_is_compared_by_its_own_metrics(
        tiny_recipe, tiny_csv, data_scientist, reviewer, deployer):
    production, candidate = candidate_beside_unreadable_production(
        tiny_csv, data_scientist=data_scientist, reviewer=reviewer, deployer=deployer)

    comparison = candidate.training_report["production_comparison"]
    assert comparison["metrics"] is None
    assert comparison["reason"].startswith(f"production {production.version} could not be "
                                           "scored on these rows")
    assert candidate.gate_results["validation"]["production"] == 1.5
