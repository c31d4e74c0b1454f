"""The registry's state machine (docs/registry.md#states-and-transitions): transitions, audit rows,
four eyes, gates, deployment, rollback and artifact clean-up, all through the real services."""

import os
import time

import pytest

from core.errors import (
    FourEyesError,
    GateFailedError,
    IllegalTransitionError,
    PermissionDeniedError,
    RollbackUnavailableError,
    TrafficLimitError,
    ValidationError,
)
from mlregistry import artifacts, registration, services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from tests.factories import (
    UserFactory,
    artifact_tamper,
    grant_permissions,
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

FAILED_VALIDATION = {"validation": {"passed": False}, "fairness": {"passed": True}}




def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def rows_of(version: MLModelVersion) -> int:
    return ModelTransition.objects.filter(version_id=version.pk).count()


def last_row(version: MLModelVersion) -> ModelTransition:
    return ModelTransition.objects.filter(version_id=version.pk).order_by("-sequence").first()


def live_traffic(model_id: int) -> int:
    return sum(
        MLModelVersion.objects.filter(model_id=model_id,
                                      status__in=[Status.PRODUCTION, Status.STAGING])
        .values_list("traffic_percentage", flat=True)
    )


def production_count(model_id: int) -> int:
    return MLModelVersion.objects.filter(model_id=model_id, status=Status.PRODUCTION).count()


def version_in_state(state: str, people: dict) -> MLModelVersion:
    """A version in `state`; "retired" is an archived version that was once in production."""
    if state == "testing":
        return register_version(user=people["user"], slope=5.0)
    if state == "staging":
        return register_approved_version(**people, slope=5.0)
    if state == "production":
        return register_deployed_version(**people, slope=5.0)
    if state == "archived":
        version = register_version(user=people["user"], slope=5.0)
        return services.model_version_reject(version=version, user=people["reviewer"], notes="no")
    if state == "retired":
        retired = register_deployed_version(**people, slope=5.0)
        register_deployed_version(**people, slope=6.0)
        return fresh(retired)
    raise AssertionError(state)


def estimator_path(artifact_dir, version: MLModelVersion):
    entry = next(e for e in version.artifact_manifest["artifacts"] if e["name"] == "estimator")
    return artifact_dir / entry["path"]


# --- the happy path -----------------------------------------------------------------------


def test_approve_moves_testing_version_to_staging(testing_version, reviewer):
    result = services.model_version_approve(version=testing_version, user=reviewer, notes="sound")

    stored = fresh(testing_version)
    assert result.status == Status.STAGING
    assert stored.status == Status.STAGING
    assert stored.approved_by == reviewer
    assert stored.approved_at is not None
    assert stored.approval_notes == "sound"
    assert stored.traffic_percentage == 0


def test_deploy_makes_staging_version_champion_with_full_traffic(people):
    version = register_approved_version(**people)

    services.model_version_deploy(version=version, user=people["deployer"])

    stored = fresh(version)
    assert stored.status == Status.PRODUCTION
    assert stored.traffic_percentage == 100
    assert stored.deployed_at is not None
    assert stored.deprecated_at is None
    assert not stored.is_shadow


# --- illegal transitions ------------------------------------------------------------------


def _call(action: str, version: MLModelVersion, people: dict):
    if action == "approve":
        return services.model_version_approve(version=version, user=people["reviewer"], notes="ok")
    if action == "reject":
        return services.model_version_reject(version=version, user=people["reviewer"], notes="no")
    if action == "withdraw":
        return services.model_version_withdraw_approval(version=version, user=people["reviewer"],
                                                        notes="wait")
    if action == "deploy":
        return services.model_version_deploy(version=version, user=people["deployer"])
    if action == "end_test":
        return services.model_version_end_test(version=version, user=people["deployer"])
    if action == "archive":
        return services.model_version_archive(version=version, user=people["deployer"],
                                              reason="retire")
    raise AssertionError(action)


@pytest.mark.parametrize(
    ("action", "state", "from_status", "to_status"),
    [
        ("approve", "staging", "staging", "staging"),
        ("approve", "production", "production", "staging"),
        ("approve", "archived", "archived", "staging"),
        ("approve", "retired", "archived", "staging"),
        ("deploy", "testing", "testing", "production"),
        ("deploy", "archived", "archived", "production"),
        ("deploy", "retired", "archived", "production"),
        ("deploy", "production", "production", "production"),
        ("withdraw", "testing", "testing", "testing"),
        ("withdraw", "production", "production", "testing"),
        ("reject", "production", "production", "archived"),
        ("reject", "archived", "archived", "archived"),
        ("end_test", "testing", "testing", "staging"),
        ("end_test", "staging", "staging", "staging"),
        ("end_test", "production", "production", "staging"),
        ("archive", "archived", "archived", "archived"),
        ("archive", "retired", "archived", "archived"),
    ],
)
def test_illegal_transition_refused_and_changes_nothing(people, action, state, from_status,
                                                        to_status):
    version = version_in_state(state, people)
    before = registry_state(version.model_id)

    with pytest.raises(IllegalTransitionError) as refused:
        _call(action, version, people)

    assert refused.value.code == "illegal_transition"
    assert refused.value.details == {"from": from_status, "to": to_status}
    assert f"{from_status} -> {to_status}" in refused.value.message
    assert registry_state(version.model_id) == before


# --- the audit trail ----------------------------------------------------------------------


def test_register_writes_registered_and_validated_rows(testing_version, data_scientist):
    rows = list(ModelTransition.objects.filter(version=testing_version).order_by("sequence"))

    assert [(r.from_status, r.to_status, r.reason) for r in rows] == [
        ("", Status.TRAINING, "registered"),
        (Status.TRAINING, Status.TESTING, "validated"),
    ]
    assert [r.sequence for r in rows] == [1, 2]
    assert all(r.actor == data_scientist for r in rows)
    assert rows[1].previous_sha256 == rows[0].row_sha256


def test_approve_writes_one_row_with_actor_and_notes(testing_version, reviewer):
    before = rows_of(testing_version)

    services.model_version_approve(version=testing_version, user=reviewer, notes="checked")

    row = last_row(testing_version)
    assert rows_of(testing_version) == before + 1
    assert (row.actor, row.from_status, row.to_status, row.reason, row.notes) == (
        reviewer, Status.TESTING, Status.STAGING, "approved", "checked"
    )
    assert (row.traffic_before, row.traffic_after) == (0, 0)


def test_reject_writes_one_row_with_reviewer_notes(testing_version, reviewer):
    before = rows_of(testing_version)

    services.model_version_reject(version=testing_version, user=reviewer, notes="overfits")

    row = last_row(testing_version)
    assert rows_of(testing_version) == before + 1
    assert (row.actor, row.from_status, row.to_status, row.reason, row.notes) == (
        reviewer, Status.TESTING, Status.ARCHIVED, "rejected", "overfits"
    )
    stored = fresh(testing_version)
    assert stored.status == Status.ARCHIVED
    assert stored.approval_notes == "overfits"


def test_withdraw_approval_returns_version_to_testing_with_one_row(people):
    version = register_approved_version(**people)
    before = rows_of(version)

    services.model_version_withdraw_approval(version=version, user=people["reviewer"],
                                             notes="new data arrived")

    stored = fresh(version)
    row = last_row(version)
    assert stored.status == Status.TESTING
    assert stored.approved_by is None
    assert rows_of(version) == before + 1
    assert (row.from_status, row.to_status, row.reason, row.notes) == (
        Status.STAGING, Status.TESTING, "approval_withdrawn", "new data arrived"
    )


def test_deploy_writes_one_row_with_traffic_before_and_after(people):
    version = register_approved_version(**people)
    before = rows_of(version)

    services.model_version_deploy(version=version, user=people["deployer"], notes="go live")

    row = last_row(version)
    assert rows_of(version) == before + 1
    assert (row.actor, row.from_status, row.to_status, row.reason, row.notes) == (
        people["deployer"], Status.STAGING, Status.PRODUCTION, "deployed", "go live"
    )
    assert (row.traffic_before, row.traffic_after) == (0, 100)


def test_deploy_over_champion_writes_one_row_for_each_version(people, champion):
    newcomer = register_approved_version(**people, slope=2.0)
    champion_rows, newcomer_rows = rows_of(champion), rows_of(newcomer)

    services.model_version_deploy(version=newcomer, user=people["deployer"])

    assert rows_of(champion) == champion_rows + 1
    assert rows_of(newcomer) == newcomer_rows + 1
    retired = last_row(champion)
    assert (retired.from_status, retired.to_status, retired.traffic_before,
            retired.traffic_after) == (Status.PRODUCTION, Status.ARCHIVED, 100, 0)
    assert retired.sequence < last_row(newcomer).sequence


def test_challenger_start_writes_one_row_for_challenger(people, champion):
    challenger = register_approved_version(**people, slope=2.0)
    before = rows_of(challenger)

    services.model_version_deploy(version=challenger, user=people["deployer"], traffic=25)

    row = last_row(challenger)
    assert rows_of(challenger) == before + 1
    assert (row.from_status, row.to_status, row.reason) == (
        Status.STAGING, Status.STAGING, "ab_test_started"
    )
    assert (row.traffic_before, row.traffic_after) == (0, 25)


def test_audit_sequence_is_contiguous_across_lifecycle(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=20)
    services.model_version_end_test(version=challenger, user=people["deployer"])
    services.model_version_deploy(version=challenger, user=people["deployer"])
    services.model_rollback(model=champion.model, user=people["deployer"], reason="bad")

    sequences = list(ModelTransition.objects.filter(model=champion.model)
                     .order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


# --- four eyes and permissions ------------------------------------------------------------


def test_approve_refused_for_creator_holding_approve_permission(data_scientist):
    creator = grant_permissions(data_scientist, "approve_mlmodelversion")
    version = register_version(user=creator)
    before = registry_state(version.model_id)

    with pytest.raises(FourEyesError) as refused:
        services.model_version_approve(version=version, user=creator, notes="my own work")

    assert refused.value.code == "four_eyes_violation"
    assert registry_state(version.model_id) == before
    assert fresh(version).status == Status.TESTING


def test_approve_refused_for_superuser_creator(db):
    root = UserFactory(username="root", is_superuser=True)
    version = register_version(user=root)
    before = registry_state(version.model_id)

    with pytest.raises(FourEyesError):
        services.model_version_approve(version=version, user=root, notes="trust me")

    assert registry_state(version.model_id) == before


@pytest.mark.parametrize("who", ["data_scientist", "deployer", "outsider"])
@pytest.mark.parametrize("action", ["approve", "reject", "withdraw"])
def test_review_actions_refused_without_approve_permission(request, people, who, action):
    version = (register_approved_version(**people) if action == "withdraw"
               else register_version(user=people["user"]))
    user = request.getfixturevalue(who)
    before = registry_state(version.model_id)

    with pytest.raises(PermissionDeniedError) as refused:
        _call(action, version, {**people, "reviewer": user})

    assert refused.value.code == "permission_denied"
    assert refused.value.details == {"permission": "mlregistry.approve_mlmodelversion"}
    assert registry_state(version.model_id) == before


def test_approve_refused_for_inactive_reviewer(testing_version, reviewer):
    reviewer.is_active = False
    reviewer.save()
    before = registry_state(testing_version.model_id)

    with pytest.raises(PermissionDeniedError):
        services.model_version_approve(version=testing_version, user=reviewer, notes="ok")

    assert registry_state(testing_version.model_id) == before


@pytest.mark.parametrize("who", ["reviewer", "data_scientist", "outsider"])
@pytest.mark.parametrize("action", ["deploy", "challenger", "end_test", "archive", "rollback"])
def test_deploy_actions_refused_without_deploy_permission(request, people, champion, who, action):
    user = request.getfixturevalue(who)
    target = {
        "deploy": lambda: register_approved_version(**people, slope=2.0),
        "challenger": lambda: register_approved_version(**people, slope=2.0),
        "end_test": lambda: register_deployed_version(**people, slope=2.0, traffic=10),
        "archive": lambda: champion,
        "rollback": lambda: register_deployed_version(**people, slope=2.0),
    }[action]()
    attempt = {
        "deploy": lambda: services.model_version_deploy(version=target, user=user),
        "challenger": lambda: services.model_version_deploy(version=target, user=user, traffic=10),
        "end_test": lambda: services.model_version_end_test(version=target, user=user),
        "archive": lambda: services.model_version_archive(version=target, user=user,
                                                          reason="retire"),
        "rollback": lambda: services.model_rollback(model=champion.model, user=user, reason="bad"),
    }[action]
    before = registry_state(champion.model_id)

    with pytest.raises(PermissionDeniedError) as refused:
        attempt()

    assert refused.value.details == {"permission": "mlregistry.deploy_mlmodelversion"}
    assert registry_state(champion.model_id) == before


@pytest.mark.parametrize("notes", ["", "   \n"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_review_refused_without_notes(testing_version, reviewer, action, notes):
    before = registry_state(testing_version.model_id)
    service = (services.model_version_approve if action == "approve"
               else services.model_version_reject)

    with pytest.raises(ValidationError) as refused:
        service(version=testing_version, user=reviewer, notes=notes)

    assert refused.value.code == "validation_error"
    assert registry_state(testing_version.model_id) == before


def test_rollback_refused_without_reason(people, champion, deployer):
    register_deployed_version(**people, slope=2.0)
    before = registry_state(champion.model_id)

    with pytest.raises(ValidationError):
        services.model_rollback(model=champion.model, user=deployer, reason="  ")

    assert registry_state(champion.model_id) == before


def test_archive_refused_without_reason(champion, deployer):
    before = registry_state(champion.model_id)

    with pytest.raises(ValidationError):
        services.model_version_archive(version=champion, user=deployer, reason="")

    assert registry_state(champion.model_id) == before


# --- gates --------------------------------------------------------------------------------


def test_approve_refused_when_gate_failed_without_justification(data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results=FAILED_VALIDATION)
    before = registry_state(version.model_id)

    with pytest.raises(GateFailedError) as refused:
        services.model_version_approve(version=version, user=reviewer, notes="fine by me",
                                       override_justification="   ")

    assert refused.value.code == "gate_failed"
    assert refused.value.details == {"failed_gates": ["validation"]}
    assert registry_state(version.model_id) == before


def test_approve_with_override_justification_when_gate_failed(data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results=FAILED_VALIDATION)

    services.model_version_approve(version=version, user=reviewer, notes="known dip",
                                   override_justification="holiday data; accepted by product")

    stored = fresh(version)
    assert stored.status == Status.STAGING
    assert stored.override_justification == "holiday data; accepted by product"
    assert stored.approval_notes == "known dip"
    row = last_row(version)
    assert "known dip" in row.notes
    assert "holiday data; accepted by product" in row.notes
    assert "validation" in row.notes


def test_approve_treats_gate_without_result_as_failed(data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results={"fairness": {}})

    with pytest.raises(GateFailedError):
        services.model_version_approve(version=version, user=reviewer, notes="ok")

    assert fresh(version).status == Status.TESTING


# --- deployment ---------------------------------------------------------------------------


def test_deploy_archives_previous_champion(people, champion):
    newcomer = register_approved_version(**people, slope=2.0)

    services.model_version_deploy(version=newcomer, user=people["deployer"])

    old, new = fresh(champion), fresh(newcomer)
    assert old.status == Status.ARCHIVED
    assert old.traffic_percentage == 0
    assert old.deprecated_at is not None
    assert new.status == Status.PRODUCTION
    assert new.traffic_percentage == 100
    assert production_count(champion.model_id) == 1


def test_deploy_with_traffic_starts_challenger_beside_champion(people, champion):
    challenger = register_approved_version(**people, slope=2.0)

    services.model_version_deploy(version=challenger, user=people["deployer"], traffic=30)

    stored = fresh(challenger)
    assert (stored.status, stored.traffic_percentage, stored.is_shadow) == (
        Status.STAGING, 30, False
    )
    assert fresh(champion).traffic_percentage == 70
    assert fresh(champion).status == Status.PRODUCTION


def test_deploy_challenger_refused_when_traffic_would_exceed_100(people, champion):
    register_deployed_version(**people, slope=2.0, traffic=60)
    second = register_approved_version(**people, slope=3.0)
    before = registry_state(champion.model_id)

    with pytest.raises(TrafficLimitError) as refused:
        services.model_version_deploy(version=second, user=people["deployer"], traffic=50)

    assert refused.value.code == "traffic_exceeded"
    assert registry_state(champion.model_id) == before
    assert fresh(champion).traffic_percentage == 40
    assert live_traffic(champion.model_id) == 100


def test_deploy_challengers_may_take_all_traffic_together(people, champion):
    register_deployed_version(**people, slope=2.0, traffic=60)
    second = register_approved_version(**people, slope=3.0)

    services.model_version_deploy(version=second, user=people["deployer"], traffic=40)

    assert fresh(champion).traffic_percentage == 0
    assert fresh(champion).status == Status.PRODUCTION
    assert live_traffic(champion.model_id) == 100


@pytest.mark.parametrize("traffic", [0, 100, 101, -5])
def test_deploy_refused_for_challenger_traffic_out_of_range(people, champion, traffic):
    challenger = register_approved_version(**people, slope=2.0)
    before = registry_state(champion.model_id)

    with pytest.raises(ValidationError):
        services.model_version_deploy(version=challenger, user=people["deployer"], traffic=traffic)

    assert registry_state(champion.model_id) == before


def test_deploy_refused_for_both_traffic_and_shadow(people, champion):
    challenger = register_approved_version(**people, slope=2.0)
    before = registry_state(champion.model_id)

    with pytest.raises(ValidationError):
        services.model_version_deploy(version=challenger, user=people["deployer"], traffic=10,
                                      shadow=True)

    assert registry_state(champion.model_id) == before


def test_deploy_shadow_receives_no_traffic(people, champion):
    shadow = register_approved_version(**people, slope=2.0)

    services.model_version_deploy(version=shadow, user=people["deployer"], shadow=True)

    stored = fresh(shadow)
    assert (stored.status, stored.traffic_percentage, stored.is_shadow) == (Status.STAGING, 0, True)
    assert fresh(champion).traffic_percentage == 100
    assert last_row(shadow).reason == "shadow_started"


@pytest.mark.parametrize("test_kind", [{"traffic": 30}, {"shadow": True}])
def test_deploy_test_refused_without_champion(people, test_kind):
    candidate = register_approved_version(**people)
    before = registry_state(candidate.model_id)

    with pytest.raises(IllegalTransitionError) as refused:
        services.model_version_deploy(version=candidate, user=people["deployer"], **test_kind)

    assert "no production version" in refused.value.message
    assert registry_state(candidate.model_id) == before


def test_promoting_challenger_ends_other_tests_and_archives_champion(people, champion):
    promoted = register_deployed_version(**people, slope=2.0, traffic=30)
    other = register_deployed_version(**people, slope=3.0, traffic=20)
    shadow = register_deployed_version(**people, slope=4.0, shadow=True)
    other_rows, shadow_rows = rows_of(other), rows_of(shadow)

    services.model_version_deploy(version=promoted, user=people["deployer"])

    assert (fresh(promoted).status, fresh(promoted).traffic_percentage) == (Status.PRODUCTION, 100)
    old = fresh(champion)
    assert (old.status, old.traffic_percentage) == (Status.ARCHIVED, 0)
    assert old.deprecated_at is not None
    for ended in (fresh(other), fresh(shadow)):
        assert (ended.status, ended.traffic_percentage, ended.is_shadow) == (
            Status.STAGING, 0, False
        )
    assert rows_of(other) == other_rows + 1
    assert rows_of(shadow) == shadow_rows + 1
    assert last_row(other).reason == "test_ended"
    assert live_traffic(champion.model_id) == 100


def test_end_test_returns_traffic_to_champion(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)
    before = rows_of(challenger)

    services.model_version_end_test(version=challenger, user=people["deployer"], notes="done")

    stored = fresh(challenger)
    assert (stored.status, stored.traffic_percentage) == (Status.STAGING, 0)
    assert fresh(champion).traffic_percentage == 100
    assert rows_of(challenger) == before + 1
    row = last_row(challenger)
    assert (row.reason, row.traffic_before, row.traffic_after) == ("test_ended", 30, 0)


def test_end_test_of_shadow_clears_shadow_flag(people, champion):
    shadow = register_deployed_version(**people, slope=2.0, shadow=True)

    services.model_version_end_test(version=shadow, user=people["deployer"])

    stored = fresh(shadow)
    assert (stored.status, stored.is_shadow) == (Status.STAGING, False)
    assert fresh(champion).traffic_percentage == 100


def test_reject_is_refused_for_a_live_challenger(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=40)
    before = registry_state(challenger.model_id)

    with pytest.raises(IllegalTransitionError, match="serving traffic or was deployed"):
        services.model_version_reject(version=challenger, user=people["reviewer"],
                                      notes="worse CTR")

    assert registry_state(challenger.model_id) == before


def test_withdraw_approval_of_challenger_returns_its_traffic(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=40)

    services.model_version_withdraw_approval(version=challenger, user=people["reviewer"],
                                             notes="wrong data")

    stored = fresh(challenger)
    assert (stored.status, stored.traffic_percentage) == (Status.TESTING, 0)
    assert fresh(champion).traffic_percentage == 100


def test_archive_champion_ends_live_tests(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)
    shadow = register_deployed_version(**people, slope=3.0, shadow=True)

    services.model_version_archive(version=champion, user=people["deployer"], reason="incident")

    old = fresh(champion)
    assert (old.status, old.traffic_percentage) == (Status.ARCHIVED, 0)
    assert old.deprecated_at is not None
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == (Status.STAGING, 0)
    assert fresh(shadow).is_shadow is False
    assert live_traffic(champion.model_id) == 0
    assert last_row(champion).notes == "incident"


def test_archive_challenger_returns_its_traffic(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)

    services.model_version_archive(version=challenger, user=people["deployer"], reason="stop")

    assert fresh(challenger).status == Status.ARCHIVED
    assert fresh(challenger).deprecated_at is None
    assert fresh(champion).traffic_percentage == 100


# --- rollback -----------------------------------------------------------------------------


def test_rollback_restores_previous_production_version(people, champion):
    current = register_deployed_version(**people, slope=2.0)
    restored_rows, current_rows = rows_of(champion), rows_of(current)

    plan = services.model_rollback(model=champion.model, user=people["deployer"],
                                   reason="conversion dropped")

    assert (plan.from_version, plan.to_version, plan.dry_run) == ("1.1.0", "1.0.0", False)
    restored, retired = fresh(champion), fresh(current)
    assert (restored.status, restored.traffic_percentage) == (Status.PRODUCTION, 100)
    assert restored.deprecated_at is None
    assert (retired.status, retired.traffic_percentage) == (Status.ARCHIVED, 0)
    assert retired.deprecated_at is not None
    assert rows_of(champion) == restored_rows + 1
    assert rows_of(current) == current_rows + 1


def test_rollback_records_who_and_why(people, champion):
    current = register_deployed_version(**people, slope=2.0)

    services.model_rollback(model=champion.model, user=people["deployer"],
                            reason="conversion dropped")

    entered, left = last_row(champion), last_row(current)
    assert (entered.actor, entered.reason, entered.notes) == (
        people["deployer"], "rollback", "conversion dropped"
    )
    assert (entered.from_status, entered.to_status) == (Status.ARCHIVED, Status.PRODUCTION)
    assert (entered.traffic_before, entered.traffic_after) == (0, 100)
    assert (left.actor, left.reason, left.notes) == (
        people["deployer"], "rollback", "conversion dropped"
    )
    assert (left.from_status, left.to_status) == (Status.PRODUCTION, Status.ARCHIVED)


def test_rollback_to_version_restores_that_version(people, champion):
    middle = register_deployed_version(**people, slope=2.0)
    current = register_deployed_version(**people, slope=3.0)

    plan = services.model_rollback(model=champion.model, user=people["deployer"], reason="bad",
                                   to_version="1.0.0")

    assert plan.to_version == "1.0.0"
    assert fresh(champion).status == Status.PRODUCTION
    assert fresh(middle).status == Status.ARCHIVED
    assert fresh(current).status == Status.ARCHIVED
    assert production_count(champion.model_id) == 1


def test_rollback_ends_live_tests(people, champion):
    register_deployed_version(**people, slope=2.0)
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)

    plan = services.model_rollback(model=champion.model, user=people["deployer"], reason="bad")

    assert plan.ended_tests == [challenger.version]
    assert fresh(challenger).traffic_percentage == 0
    assert fresh(champion).traffic_percentage == 100
    assert live_traffic(champion.model_id) == 100


def test_rollback_refused_without_previous_production_version(champion, deployer):
    before = registry_state(champion.model_id)

    with pytest.raises(RollbackUnavailableError) as refused:
        services.model_rollback(model=champion.model, user=deployer, reason="bad")

    assert refused.value.code == "rollback_unavailable"
    assert registry_state(champion.model_id) == before


def test_rollback_refused_to_never_deployed_version(people, champion):
    register_deployed_version(**people, slope=2.0)
    rejected = register_version(user=people["user"], slope=3.0)
    services.model_version_reject(version=rejected, user=people["reviewer"], notes="no")
    before = registry_state(champion.model_id)

    with pytest.raises(RollbackUnavailableError):
        services.model_rollback(model=champion.model, user=people["deployer"], reason="bad",
                                to_version=rejected.version)

    assert registry_state(champion.model_id) == before


@pytest.mark.parametrize("to_version", ["1.1.0", "9.9.9"])
def test_rollback_refused_to_current_or_unknown_version(people, champion, to_version):
    register_deployed_version(**people, slope=2.0)
    before = registry_state(champion.model_id)

    with pytest.raises(RollbackUnavailableError):
        services.model_rollback(model=champion.model, user=people["deployer"], reason="bad",
                                to_version=to_version)

    assert registry_state(champion.model_id) == before


def test_rollback_dry_run_returns_plan_and_changes_nothing(people, champion):
    register_deployed_version(**people, slope=2.0)
    challenger = register_deployed_version(**people, slope=3.0, traffic=10)
    before = registry_state(champion.model_id)

    plan = services.model_rollback(model=champion.model, user=people["deployer"], reason="bad",
                                   dry_run=True)

    assert plan == services.RollbackPlan(model=champion.model.name, from_version="1.1.0",
                                         to_version="1.0.0", ended_tests=[challenger.version],
                                         dry_run=True)
    assert registry_state(champion.model_id) == before


def test_rollback_refused_when_target_artifact_tampered(people, champion, artifact_dir):
    register_deployed_version(**people, slope=2.0)
    artifact_tamper(champion)
    before = registry_state(champion.model_id)

    with pytest.raises(artifacts.ArtifactIntegrityError) as refused:
        services.model_rollback(model=champion.model, user=people["deployer"], reason="bad")

    assert refused.value.code == "model_integrity_error"
    assert registry_state(champion.model_id) == before


# --- artifact clean-up --------------------------------------------------------------------


@pytest.fixture
def four_production_generations(people):
    """1.0.0 .. 1.3.0 deployed one after another; 1.3.0 is the champion."""
    return [register_deployed_version(**people, slope=float(n)) for n in (1, 2, 3, 4)]


def test_artifact_cleanup_keeps_two_prior_production_versions(four_production_generations,
                                                              artifact_dir):
    oldest, prior2, prior1, current = four_production_generations

    deleted = registration.artifact_cleanup().paths

    assert deleted == {estimator_path(artifact_dir, oldest).relative_to(artifact_dir).as_posix()}
    assert not estimator_path(artifact_dir, oldest).exists()
    for kept in (prior2, prior1, current):
        assert estimator_path(artifact_dir, kept).exists()
        assert fresh(kept).artifacts_deleted_at is None
        artifacts.bundle_verify(manifest=kept.artifact_manifest, model_sha256=kept.model_sha256)
    assert fresh(oldest).artifacts_deleted_at is not None


def test_artifact_cleanup_keeps_files_shared_with_kept_versions(four_production_generations,
                                                                artifact_dir):
    oldest, *_ = four_production_generations
    profile = next(e for e in oldest.artifact_manifest["artifacts"]
                   if e["name"] == "reference_profile")

    registration.artifact_cleanup()

    assert (artifact_dir / profile["path"]).exists()


def test_artifact_cleanup_keeps_testing_and_staging_versions(people, artifact_dir):
    testing = register_version(user=people["user"], slope=1.0)
    staging = register_approved_version(**people, slope=2.0)

    registration.artifact_cleanup()

    assert estimator_path(artifact_dir, testing).exists()
    assert estimator_path(artifact_dir, staging).exists()
    assert fresh(testing).artifacts_deleted_at is None
    assert fresh(staging).artifacts_deleted_at is None


def test_artifact_cleanup_dry_run_deletes_nothing(four_production_generations, artifact_dir):
    oldest, *_ = four_production_generations

    deleted = registration.artifact_cleanup(dry_run=True).paths

    assert estimator_path(artifact_dir, oldest).relative_to(artifact_dir).as_posix() in deleted
    assert estimator_path(artifact_dir, oldest).exists()
    assert fresh(oldest).artifacts_deleted_at is None


def _orphan(artifact_dir, name: str, *, age_seconds: float = 0):
    path = artifact_dir / artifacts.OBJECT_PREFIX / "ff" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left over by a failed registration")
    if age_seconds:
        stamp = time.time() - age_seconds
        os.utime(path, (stamp, stamp))
    return path


def test_artifact_cleanup_deletes_orphan_files_past_grace_period(champion, artifact_dir,
                                                                 settings):
    settings.ARTIFACT_ORPHAN_GRACE_SECONDS = 0
    orphan = _orphan(artifact_dir, "ff" + "0" * 62)

    deleted = registration.artifact_cleanup().paths

    assert orphan.relative_to(artifact_dir).as_posix() in deleted
    assert not orphan.exists()
    assert estimator_path(artifact_dir, champion).exists()
    assert fresh(champion).artifacts_deleted_at is None


def test_artifact_cleanup_keeps_orphan_files_within_grace_period(champion, artifact_dir,
                                                                 settings):
    settings.ARTIFACT_ORPHAN_GRACE_SECONDS = 3600
    young = _orphan(artifact_dir, "ff" + "1" * 62)
    old = _orphan(artifact_dir, "ff" + "2" * 62, age_seconds=7200)

    deleted = registration.artifact_cleanup().paths

    assert young.exists()
    assert not old.exists()
    assert deleted == {old.relative_to(artifact_dir).as_posix()}


def test_artifact_cleanup_never_removes_rollback_target(people, four_production_generations):
    oldest, _prior2, prior1, current = four_production_generations
    registration.artifact_cleanup()

    services.model_rollback(model=current.model, user=people["deployer"], reason="bad")

    assert fresh(prior1).status == Status.PRODUCTION
    assert fresh(current).status == Status.ARCHIVED
    assert fresh(oldest).status == Status.ARCHIVED


def test_rollback_to_cleaned_up_version_is_unavailable(four_production_generations, people):
    oldest, *_, current = four_production_generations
    registration.artifact_cleanup()
    before = registry_state(current.model_id)

    with pytest.raises(RollbackUnavailableError, match="removed by clean-up"):
        services.model_rollback(model=current.model, user=people["deployer"], reason="x",
                                to_version=oldest.version)

    assert registry_state(current.model_id) == before


def test_test_stop_returns_traffic_to_champion_as_the_system(people, champion, settings):
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)

    services.model_version_test_stop(version=challenger, reason="p95 latency 900 ms > 300 ms")

    stored = fresh(challenger)
    assert (stored.status, stored.traffic_percentage) == (Status.STAGING, 0)
    assert fresh(champion).traffic_percentage == 100
    row = last_row(challenger)
    assert (row.reason, row.traffic_before, row.traffic_after) == (
        "test_stopped_automatically", 30, 0)
    assert row.notes == "p95 latency 900 ms > 300 ms"
    assert row.actor.username == settings.SYSTEM_USERNAME


@pytest.mark.parametrize("test_kind", ["shadow", "champion"])
def test_test_stop_refused_for_a_version_not_in_an_ab_test(people, champion, test_kind):
    version = (register_deployed_version(**people, slope=2.0, shadow=True)
               if test_kind == "shadow" else champion)
    before = registry_state(champion.model_id)

    with pytest.raises(IllegalTransitionError):
        services.model_version_test_stop(version=version, reason="worse")

    assert registry_state(champion.model_id) == before


def test_test_stop_needs_a_reason(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)

    with pytest.raises(ValidationError):
        services.model_version_test_stop(version=challenger, reason="  ")

    assert fresh(challenger).traffic_percentage == 30
