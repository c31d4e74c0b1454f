"""Database constraints hold even when code bypasses the services (docs/registry.md#deployment)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mlregistry.models import MLModelVersion, ModelTransition, Status
from tests.factories import register_approved_version, register_deployed_version, register_version


def stored(version: MLModelVersion) -> tuple:
    return MLModelVersion.objects.filter(pk=version.pk).values_list(
        "status", "traffic_percentage", "is_shadow"
    ).get()


def test_second_production_version_via_update_refused(people, champion):
    other = register_approved_version(**people, slope=2.0)

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=other.pk).update(status=Status.PRODUCTION)

    assert stored(other) == (Status.STAGING, 0, False)
    champions = MLModelVersion.objects.filter(model=champion.model, status=Status.PRODUCTION)
    assert champions.count() == 1


def test_second_production_version_via_create_refused(champion, data_scientist):
    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.create(
            model=champion.model, version="9.0.0", created_by=data_scientist,
            model_sha256="a" * 64, training_dataset_sha256="b" * 64, status=Status.PRODUCTION,
        )

    assert not MLModelVersion.objects.filter(model=champion.model, version="9.0.0").exists()


def test_production_versions_of_different_models_allowed(people, champion):
    other = register_version(user=people["user"], name="lead-conversion", slope=2.0)

    MLModelVersion.objects.filter(pk=other.pk).update(status=Status.PRODUCTION)

    assert stored(other)[0] == Status.PRODUCTION
    assert stored(champion)[0] == Status.PRODUCTION


def test_traffic_above_100_refused(champion):
    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=champion.pk).update(traffic_percentage=101)

    assert stored(champion) == (Status.PRODUCTION, 100, False)


def test_traffic_on_archived_version_refused(people, champion):
    rejected = register_version(user=people["user"], slope=2.0)
    MLModelVersion.objects.filter(pk=rejected.pk).update(status=Status.ARCHIVED)

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=rejected.pk).update(traffic_percentage=30)

    assert stored(rejected) == (Status.ARCHIVED, 0, False)


@pytest.mark.parametrize("status", [Status.TRAINING, Status.TESTING])
def test_traffic_on_unapproved_version_refused(people, champion, status):
    candidate = register_version(user=people["user"], slope=2.0)
    MLModelVersion.objects.filter(pk=candidate.pk).update(status=status)

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=candidate.pk).update(traffic_percentage=10)

    assert stored(candidate) == (status, 0, False)


def test_traffic_on_shadow_refused(people, champion):
    shadow = register_deployed_version(**people, slope=2.0, shadow=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=shadow.pk).update(traffic_percentage=10)

    assert stored(shadow) == (Status.STAGING, 0, True)


@pytest.mark.parametrize("status", [Status.PRODUCTION, Status.TESTING, Status.ARCHIVED])
def test_shadow_outside_staging_refused(people, status):
    version = register_version(user=people["user"], slope=2.0)
    MLModelVersion.objects.filter(pk=version.pk).update(status=status, traffic_percentage=0)

    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.filter(pk=version.pk).update(is_shadow=True)

    assert stored(version) == (status, 0, False)


def test_duplicate_version_string_refused(testing_version, data_scientist):
    with pytest.raises(IntegrityError), transaction.atomic():
        MLModelVersion.objects.create(
            model=testing_version.model, version=testing_version.version,
            created_by=data_scientist, model_sha256="a" * 64, training_dataset_sha256="b" * 64,
        )

    assert MLModelVersion.objects.filter(model=testing_version.model).count() == 1


def test_duplicate_transition_sequence_refused(testing_version, data_scientist):
    last = ModelTransition.objects.filter(version=testing_version).order_by("-sequence").first()

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelTransition.objects.create(
            model=testing_version.model, version=testing_version, sequence=last.sequence,
            actor=data_scientist, created_at=timezone.now(), from_status=Status.TESTING,
            to_status=Status.STAGING, reason="forged", row_sha256="0" * 64,
        )

    assert ModelTransition.objects.filter(model=testing_version.model).count() == last.sequence


def check_deferred_constraints_now() -> None:
    # The trigger runs at commit; the test's own transaction never commits.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS mlregistry_traffic_sum IMMEDIATE")


@pytest.mark.postgres
def test_live_traffic_sum_above_100_refused_by_database(people, champion):
    challenger = register_approved_version(**people, slope=2.0)

    # The update must run inside the savepoint that the refusal rolls back, so it shares the
    # block with the statement that raises (the commit-time check).
    with pytest.raises(IntegrityError, match="exceeds 100%"), transaction.atomic():  # noqa: PT012 - see above
        MLModelVersion.objects.filter(pk=challenger.pk).update(traffic_percentage=30)
        check_deferred_constraints_now()

    assert stored(challenger) == (Status.STAGING, 0, False)
    assert stored(champion) == (Status.PRODUCTION, 100, False)


@pytest.mark.postgres
def test_live_traffic_moved_between_versions_in_one_transaction_allowed(people, champion):
    challenger = register_approved_version(**people, slope=2.0)

    with transaction.atomic():
        MLModelVersion.objects.filter(pk=challenger.pk).update(traffic_percentage=30)
        MLModelVersion.objects.filter(pk=champion.pk).update(traffic_percentage=70)
        check_deferred_constraints_now()

    assert stored(challenger) == (Status.STAGING, 30, False)
