"""Registry reads: the tamper-evident audit chain and "which version answered at T?"."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ModelNotFoundError, VersionNotFoundError
from mlregistry import selectors, services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from tests.factories import register_approved_version, register_deployed_version, register_version


@pytest.fixture
def history(people):
    """A chain of a dozen rows: registrations, approvals, deploys, a test and a rollback."""
    first = register_deployed_version(**people, slope=1.0)
    challenger = register_deployed_version(**people, slope=2.0, traffic=20)
    services.model_version_deploy(version=challenger, user=people["deployer"])
    services.model_rollback(model=first.model, user=people["deployer"], reason="bad")
    return first.model


def chain(model) -> list[ModelTransition]:
    return list(ModelTransition.objects.filter(model=model).order_by("sequence"))


# --- audit chain --------------------------------------------------------------------------


def test_audit_verify_model_ok_on_untouched_chain(history):
    result = selectors.audit_verify_model(model=history)

    assert result.ok
    assert result.rows == len(chain(history)) >= 10
    assert result.broken_row_id is None


def test_audit_verify_model_ok_on_empty_chain(db):
    from mlregistry.models import MLModel

    model = MLModel.objects.create(name="empty", task="regression")

    result = selectors.audit_verify_model(model=model)

    assert result.ok
    assert result.rows == 0


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize(
    "edit",
    [
        {"notes": "x"},
        {"to_status": "tampered"},
        {"traffic_after": 42},
        {"reason": "tampered"},
        {"row_sha256": "0" * 64},
        {"previous_sha256": "f" * 64},
    ],
    ids=lambda edit: next(iter(edit)),
)
def test_audit_verify_model_names_edited_row(history, position, edit):
    rows = chain(history)
    target = {"first": rows[0], "middle": rows[len(rows) // 2], "last": rows[-1]}[position]
    ModelTransition.objects.filter(pk=target.pk).update(**edit)

    result = selectors.audit_verify_model(model=history)

    assert not result.ok
    assert result.broken_row_id == target.pk
    assert result.broken_sequence == target.sequence
    assert ModelTransition.objects.filter(pk=target.pk, **edit).exists()


def test_audit_verify_model_names_row_with_edited_actor(history, outsider):
    target = chain(history)[3]
    ModelTransition.objects.filter(pk=target.pk).update(actor=outsider)

    result = selectors.audit_verify_model(model=history)

    assert result.broken_row_id == target.pk


def test_audit_verify_model_names_row_with_edited_timestamp(history):
    target = chain(history)[4]
    ModelTransition.objects.filter(pk=target.pk).update(
        created_at=target.created_at - timedelta(days=1)
    )

    result = selectors.audit_verify_model(model=history)

    assert result.broken_row_id == target.pk


def test_audit_verify_model_detects_deleted_middle_row(history):
    rows = chain(history)
    deleted = rows[len(rows) // 2]
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {ModelTransition._meta.db_table} WHERE id = %s", [deleted.pk])

    result = selectors.audit_verify_model(model=history)

    assert not ModelTransition.objects.filter(pk=deleted.pk).exists()
    assert not result.ok
    assert result.broken_sequence == deleted.sequence + 1
    assert "missing" in result.problem


def test_audit_verify_model_detects_deleted_and_renumbered_row(history):
    """Deleting a row and shifting the later sequences down still breaks the hash links."""
    rows = chain(history)
    deleted = rows[len(rows) // 2]
    table = ModelTransition._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [deleted.pk])
        for row in rows[len(rows) // 2 + 1:]:
            cursor.execute(f"UPDATE {table} SET sequence = sequence - 1 WHERE id = %s", [row.pk])

    result = selectors.audit_verify_model(model=history)

    assert not result.ok
    assert result.broken_row_id == rows[len(rows) // 2 + 1].pk


def test_audit_verify_model_ignores_other_models_chains(history, people):
    other = register_version(user=people["user"], name="lead-conversion", slope=3.0)
    ModelTransition.objects.filter(model_id=other.model_id).update(notes="tampered")

    assert selectors.audit_verify_model(model=history).ok
    assert not selectors.audit_verify_model(model=other.model).ok


def test_transition_save_refused_for_existing_row(history):
    row = chain(history)[0]
    row.notes = "rewritten"

    with pytest.raises(ValueError, match="immutable"):
        row.save()

    assert ModelTransition.objects.get(pk=row.pk).notes != "rewritten"
    assert selectors.audit_verify_model(model=history).ok


def test_transition_delete_refused(history):
    row = chain(history)[0]
    count = ModelTransition.objects.count()

    with pytest.raises(ValueError, match="immutable"):
        row.delete()

    assert ModelTransition.objects.count() == count
    assert ModelTransition.objects.filter(pk=row.pk).exists()


# --- production_at ------------------------------------------------------------------------


def test_model_production_at_follows_deploys_and_rollback(people):
    first = register_approved_version(**people, slope=1.0)
    second = register_approved_version(**people, slope=2.0)
    name = first.model.name
    before_any = timezone.now()
    services.model_version_deploy(version=first, user=people["deployer"])
    after_first = timezone.now()
    services.model_version_deploy(version=second, user=people["deployer"])
    after_second = timezone.now()
    services.model_rollback(model=first.model, user=people["deployer"], reason="bad")
    after_rollback = timezone.now()
    services.model_version_archive(version=first, user=people["deployer"], reason="retired")
    after_archive = timezone.now()

    answers = [selectors.model_production_at(name=name, at=instant)
               for instant in (before_any, after_first, after_second, after_rollback,
                               after_archive)]

    assert answers == [None, first, second, first, None]


def test_model_production_at_answers_champion_during_ab_test(people):
    champion = register_deployed_version(**people, slope=1.0)
    challenger = register_deployed_version(**people, slope=2.0, traffic=40)
    during_test = timezone.now()
    services.model_version_deploy(version=challenger, user=people["deployer"])

    assert selectors.model_production_at(name=champion.model.name, at=during_test) == champion
    assert selectors.model_production_at(name=champion.model.name, at=timezone.now()) == challenger


def test_model_production_at_includes_the_deploy_instant(people):
    version = register_deployed_version(**people, slope=1.0)
    entered = ModelTransition.objects.get(version=version, to_status="production")

    assert selectors.model_production_at(name=version.model.name, at=entered.created_at) == version


def test_model_production_at_refused_for_unknown_model(db):
    with pytest.raises(ModelNotFoundError):
        selectors.model_production_at(name="no-such-model", at=timezone.now())


# --- lookups ------------------------------------------------------------------------------


def test_model_version_get_refused_for_unknown_version(testing_version):
    with pytest.raises(VersionNotFoundError) as refused:
        selectors.model_version_get(name=testing_version.model.name, version="9.9.9")

    assert refused.value.details == {"model": testing_version.model.name, "version": "9.9.9"}


def test_model_production_version_is_the_champion(people):
    champion = register_deployed_version(**people, slope=1.0)
    register_deployed_version(**people, slope=2.0, traffic=10)

    assert selectors.model_production_version(model=champion.model) == champion


def test_audit_verify_detects_rows_cut_from_the_end(testing_version, reviewer):
    services.model_version_approve(version=testing_version, user=reviewer, notes="ok")
    newest = ModelTransition.objects.filter(model=testing_version.model).order_by("-sequence")[0]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM mlregistry_modeltransition WHERE id = %s", [newest.pk])

    result = selectors.audit_verify_model(model=testing_version.model)

    assert not result.ok
    assert "is staging but its last audit row says testing" in result.problem


def test_audit_verify_detects_status_changed_outside_the_registry(testing_version):
    MLModelVersion.objects.filter(pk=testing_version.pk).update(status=Status.STAGING)

    result = selectors.audit_verify_model(model=testing_version.model)

    assert not result.ok
    assert "changed outside the registry" in result.problem
