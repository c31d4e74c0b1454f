"""Twenty approve, deploy and rollback calls at once on one model (issue 7, faults;
docs/registry.md#states-and-transitions).

tests/mlregistry/test_concurrency.py races six deploys, rollbacks or registrations at a
time; here all three kinds of change race together, twenty threads each on its own
PostgreSQL connection, and every audit row written is accounted for: each successful call
wrote exactly its own rows (tagged by its notes), a refused one wrote none, and the only
other rows are the test endings a new champion causes.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mlregistry import preconditions, services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from tests.factories import register_approved_version, register_deployed_version, register_version
from tests.mlregistry.test_concurrency import assert_model_consistent, race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

ROUNDS = 5
EXPECTED_REFUSALS = {"illegal_transition", "traffic_exceeded", "rollback_unavailable"}
# (traffic, shadow) of the deploys: a plain one, two challengers, a shadow.
DEPLOYS = [(None, False), (30, False), (40, False), (None, True)]


@pytest.fixture
def people(data_scientist, reviewer, deployer):
    # Warm the permission caches: the threads share these user objects.
    deployer.has_perm(preconditions.DEPLOY_PERMISSION)
    reviewer.has_perm(preconditions.APPROVE_PERMISSION)
    return {"user": data_scientist, "reviewer": reviewer, "deployer": deployer}


@dataclass(frozen=True)
class Call:
    """One racing call; its notes tag the audit rows it writes."""

    notes: str
    run: Callable[[], object]
    version: MLModelVersion | None  # the version it moves (None: a rollback picks one)
    reason: str  # of the row it writes for that version
    to_status: str
    replaces_champion: bool = False  # may also archive the champion, with the same notes


def _deploy(version, deployer, notes, traffic, shadow) -> Call:
    def run():
        return services.model_version_deploy(version=version, user=deployer, notes=notes,
                                             traffic=traffic, shadow=shadow)

    if shadow:
        return Call(notes, run, version, "shadow_started", Status.STAGING)
    if traffic is not None:
        return Call(notes, run, version, "ab_test_started", Status.STAGING)
    return Call(notes, run, version, "deployed", Status.PRODUCTION, replaces_champion=True)


def _calls(people, name: str) -> list[Call]:
    """8 approvals, 4 deploys of versions being approved at the same time, 4 deploys of
    approved versions and 4 rollbacks, on a model with a champion and an archived one."""
    register_deployed_version(**people, name=name, slope=0.5)
    register_deployed_version(**people, name=name, slope=0.75)
    candidates = [register_version(user=people["user"], name=name, slope=1.0 + i)
                  for i in range(8)]
    approved = [register_approved_version(**people, name=name, slope=10.0 + i)
                for i in range(4)]
    reviewer, deployer = people["reviewer"], people["deployer"]
    calls = [Call(f"call {i}: approve",
                  (lambda v=v, n=f"call {i}: approve": services.model_version_approve(
                      version=v, user=reviewer, notes=n)),
                  v, "approved", Status.STAGING)
             for i, v in enumerate(candidates)]
    for i, (version, (traffic, shadow)) in enumerate(zip(candidates[:4] + approved,
                                                         DEPLOYS + DEPLOYS, strict=True)):
        calls.append(_deploy(version, deployer, f"call {8 + i}: deploy", traffic, shadow))
    model = candidates[0].model
    for i in range(4):
        notes = f"call {16 + i}: rollback"
        calls.append(Call(notes, (lambda n=notes: services.model_rollback(
            model=model, user=deployer, reason=n)),
            None, "rollback", Status.PRODUCTION, replaces_champion=True))
    return calls


def _assert_rows_of(call: Call, succeeded: bool, rows: list[ModelTransition]) -> None:
    """The rows tagged with the call's notes are exactly those its success writes."""
    if not succeeded:
        assert rows == [], call.notes
        return
    own = [r for r in rows if (r.reason, r.to_status) == (call.reason, call.to_status)
           and (call.version is None or r.version_id == call.version.pk)]
    assert len(own) == 1, (call.notes, [(r.version_id, r.reason, r.to_status) for r in rows])
    others = [r for r in rows if r is not own[0]]
    if call.replaces_champion:  # the champion it replaced, archived with the same notes
        assert len(others) <= 1
        assert all((r.reason, r.from_status, r.to_status)
                   == (call.reason, Status.PRODUCTION, Status.ARCHIVED) for r in others)
    else:
        assert others == [], call.notes


def test_twenty_concurrent_registry_calls_leave_one_champion_and_an_accounted_audit(people):
    for round_number in range(ROUNDS):
        calls = _calls(people, f"race-twenty-{round_number}")
        model = calls[0].version.model
        before = ModelTransition.objects.filter(model=model).count()

        outcomes = race([call.run for call in calls])

        crashed = [(call.notes, value) for call, (kind, value) in zip(calls, outcomes,
                                                                       strict=True)
                   if kind == "crashed"]
        assert crashed == []
        assert {value.code for kind, value in outcomes if kind == "refused"} <= EXPECTED_REFUSALS
        assert_model_consistent(model)  # one champion, traffic 100, an unbroken chain
        assert MLModelVersion.objects.filter(model=model, status=Status.PRODUCTION).count() == 1
        created = list(ModelTransition.objects.filter(model=model, sequence__gt=before)
                       .order_by("sequence"))
        succeeded = [kind == "ok" for kind, _ in outcomes]
        for call, ok in zip(calls, succeeded, strict=True):
            _assert_rows_of(call, ok, [r for r in created if r.notes == call.notes])
        # Every other row is a live test ended by a new champion (deploy or rollback).
        untagged = [r for r in created if r.notes not in {call.notes for call in calls}]
        assert {(r.reason, r.notes) for r in untagged} <= {
            ("test_ended", "ended by deployed"), ("test_ended", "ended by rollback")}
        own_rows = sum(1 for call, ok in zip(calls, succeeded, strict=True) if ok
                       for r in created if r.notes == call.notes
                       and (r.reason, r.to_status) == (call.reason, call.to_status)
                       and (call.version is None or r.version_id == call.version.pk))
        assert own_rows == sum(succeeded)
        # Every approval wins (each approves its own version); the rest depend on the order.
        assert all(succeeded[:8])
