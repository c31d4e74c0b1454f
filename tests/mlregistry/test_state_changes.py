"""Every state change has a way in, from the command line and from the admin: withdraw an
approval, archive, end a test, promote an A/B winner, clean up artifacts. Each writes one
audit row and keeps the chain verifiable; a refusal changes nothing."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mlregistry import selectors
from mlregistry.models import MLModelVersion, ModelTransition, Status
from monitoring.ab import ab_evaluate
from tests.factories import (
    labelled_errors_create,
    register_approved_version,
    register_deployed_version,
    registry_state,
)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def last_row(version: MLModelVersion) -> ModelTransition:
    return ModelTransition.objects.filter(version=version).order_by("-sequence").first()


def chain_intact(version: MLModelVersion) -> bool:
    return selectors.audit_verify_model(model=version.model).ok


# --- the command line ---------------------------------------------------------------------


def test_withdraw_command_sends_an_approved_version_back_to_testing(people):
    version = register_approved_version(**people)
    rows = ModelTransition.objects.count()

    output = run("withdraw", "engagement-likes", version.version, "--user", "rita",
                 "--reason", "the holdout leaked")

    assert fresh(version).status == Status.TESTING
    assert ModelTransition.objects.count() == rows + 1
    assert (last_row(version).reason, last_row(version).notes) == (
        "approval_withdrawn", "the holdout leaked")
    assert chain_intact(version)
    assert "withdrawn by rita" in output


def test_archive_command_retires_a_version_with_the_reason(people):
    version = register_approved_version(**people)

    run("archive", "engagement-likes", version.version, "--user", "dev", "--reason", "superseded")

    assert fresh(version).status == Status.ARCHIVED
    assert (last_row(version).reason, last_row(version).notes) == ("archived", "superseded")
    assert chain_intact(version)


def test_end_test_command_returns_a_challengers_traffic(people, champion):
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)

    run("end_test", "engagement-likes", challenger.version, "--user", "dev")

    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == (Status.STAGING, 0)
    assert fresh(champion).traffic_percentage == 100
    assert last_row(challenger).reason == "test_ended"


def test_promote_winner_command_deploys_the_better_challenger(people, champion):
    challenger = register_deployed_version(**people, slope=3.0, traffic=50)
    labelled_errors_create(champion, arm="champion", noise=20.0, seed=1, n=60)
    labelled_errors_create(challenger, arm="challenger", noise=1.0, seed=2, n=60)
    [evaluation] = ab_evaluate(model_name="engagement-likes",
                               now=timezone.now() + timedelta(minutes=1))
    assert evaluation.verdict == "challenger_better"

    output = run("promote_winner", "engagement-likes", "--user", "dev")

    assert fresh(challenger).status == Status.PRODUCTION
    assert fresh(champion).status == Status.ARCHIVED
    assert f"{challenger} won the A/B test" in output


def test_promote_winner_command_without_a_test_fails_and_changes_nothing(people, champion):
    before = registry_state(champion.model_id)

    with pytest.raises(CommandError, match=r"^no_winner: "):
        run("promote_winner", "engagement-likes", "--user", "dev")

    assert registry_state(champion.model_id) == before


@pytest.mark.parametrize("command", ["withdraw", "archive"])
def test_a_refused_state_change_names_its_code_and_changes_nothing(people, champion, command):
    # The champion is production: it cannot be withdrawn; a reviewer may not archive.
    before = registry_state(champion.model_id)

    with pytest.raises(CommandError, match=r"^(illegal_transition|permission_denied): "):
        run(command, "engagement-likes", champion.version, "--user", "rita", "--reason", "x")

    assert registry_state(champion.model_id) == before


def test_an_inactive_user_is_refused_before_anything_happens(people, reviewer):
    version = register_approved_version(**people)
    reviewer.is_active = False
    reviewer.save(update_fields=["is_active"])
    before = registry_state(version.model_id)

    with pytest.raises(CommandError, match="user 'rita' is not active"):
        run("withdraw", "engagement-likes", version.version, "--user", "rita", "--reason", "x")

    assert registry_state(version.model_id) == before


def _former_champions(people, count: int) -> list[MLModelVersion]:
    """`count` versions deployed one after the other: all but the last are archived."""
    return [register_deployed_version(**people, slope=float(i + 1)) for i in range(count)]


def test_cleanup_dry_run_lists_what_it_would_delete_and_deletes_nothing(people, settings):
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
    oldest, *_ = _former_champions(people, 4)
    before = registry_state(oldest.model_id)

    output = run("cleanup_artifacts", "--dry-run")

    assert f"would remove the artifacts of engagement-likes {oldest.version}" in output
    assert registry_state(oldest.model_id) == before
    assert selectors.artifacts_verify_model(model=oldest.model)[0].ok


def test_cleanup_deletes_files_of_old_versions_with_one_audit_row_each(people, settings):
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
    oldest, kept_1, kept_2, champion = _former_champions(people, 4)

    output = run("cleanup_artifacts")

    assert fresh(oldest).artifacts_deleted_at is not None
    assert last_row(oldest).reason == "artifacts_cleaned"
    assert last_row(oldest).actor.username == settings.SYSTEM_USERNAME
    for kept in (kept_1, kept_2, champion):
        assert fresh(kept).artifacts_deleted_at is None
        assert last_row(kept).reason != "artifacts_cleaned"
    assert chain_intact(oldest)
    assert "removed the artifacts of engagement-likes" in output


def test_rollback_to_a_cleaned_version_says_why_it_is_unavailable(people, settings):
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
    oldest, *_ = _former_champions(people, 4)
    run("cleanup_artifacts")

    with pytest.raises(CommandError, match=r"rollback_unavailable: .*removed by clean-up"):
        run("rollback", "engagement-likes", "--to", oldest.version, "--user", "dev",
            "--reason", "back to the start")


# --- the admin ----------------------------------------------------------------------------


def action_url(version: MLModelVersion, action: str) -> str:
    return reverse(f"admin:mlregistry_mlmodelversion_{action}", args=[version.pk])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_reviewer_withdraws_an_approval_in_the_admin(people, reviewer):
    version = register_approved_version(**people)

    response = logged_in(reviewer).post(action_url(version, "withdraw"),
                                        {"notes": "the holdout leaked"})

    assert response.status_code == 302
    assert fresh(version).status == Status.TESTING
    assert last_row(version).reason == "approval_withdrawn"


def test_deployer_archives_a_version_in_the_admin(people, deployer):
    version = register_approved_version(**people)

    response = logged_in(deployer).post(action_url(version, "archive"), {"reason": "superseded"})

    assert response.status_code == 302
    assert fresh(version).status == Status.ARCHIVED
    assert last_row(version).notes == "superseded"


def test_archive_without_a_reason_shows_the_form_error_and_changes_nothing(people, deployer):
    version = register_approved_version(**people)
    before = registry_state(version.model_id)

    response = logged_in(deployer).post(action_url(version, "archive"), {"reason": ""})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert registry_state(version.model_id) == before


def test_a_data_scientist_may_neither_withdraw_nor_archive(people, data_scientist):
    version = register_approved_version(**people)
    before = registry_state(version.model_id)
    client = logged_in(data_scientist)

    responses = [client.post(action_url(version, "withdraw"), {"notes": "x"}),
                 client.post(action_url(version, "archive"), {"reason": "x"})]

    assert [response.status_code for response in responses] == [403, 403]
    assert registry_state(version.model_id) == before


def cleanup_url() -> str:
    return reverse("admin:mlregistry_mlmodelversion_cleanup")


def test_deployer_sees_the_dry_run_then_cleans_up_in_the_admin(people, deployer, settings):
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
    oldest, *_ = _former_champions(people, 4)
    client = logged_in(deployer)
    before = registry_state(oldest.model_id)

    changelist = client.get(reverse("admin:mlregistry_mlmodelversion_changelist"))
    page = client.get(cleanup_url())
    unchanged = registry_state(oldest.model_id)
    response = client.post(cleanup_url())

    assert b'id="artifact-cleanup"' in changelist.content
    assert f"the artifacts of engagement-likes {oldest.version}" in page.content.decode()
    assert unchanged == before
    assert response.status_code == 302
    assert fresh(oldest).artifacts_deleted_at is not None
    assert (last_row(oldest).reason, last_row(oldest).actor) == ("artifacts_cleaned", deployer)
    assert chain_intact(oldest)


def test_a_reviewer_may_not_clean_up_artifacts(people, reviewer, settings):
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
    oldest, *_ = _former_champions(people, 4)
    client = logged_in(reviewer)
    before = registry_state(oldest.model_id)

    changelist = client.get(reverse("admin:mlregistry_mlmodelversion_changelist"))
    forced = client.post(cleanup_url())

    assert b'id="artifact-cleanup"' not in changelist.content
    assert forced.status_code == 403
    assert registry_state(oldest.model_id) == before
