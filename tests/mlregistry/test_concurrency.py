"""Concurrent deploys and rollbacks on real PostgreSQL row locks
(docs/registry.md#states-and-transitions).

Every service locks the model's row first, so racing writers are serialised: whatever the
interleaving, a model ends with at most one champion, live traffic summing to 100, one
audit row per successful step and an unbroken hash chain; losers get typed errors.
"""

import threading
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApplicationError
from mlregistry import preconditions, selectors, services
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from tests.factories import (
    register_approved_version,
    register_deployed_version,
    register_version,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

ROUNDS = 5
THREADS = 6
EXPECTED_REFUSALS = {"illegal_transition", "traffic_exceeded", "rollback_unavailable"}




@pytest.fixture
def people(data_scientist, reviewer, deployer):
    # Warm the permission caches: the threads share these user objects.
    deployer.has_perm(preconditions.DEPLOY_PERMISSION)
    reviewer.has_perm(preconditions.APPROVE_PERMISSION)
    return {"user": data_scientist, "reviewer": reviewer, "deployer": deployer}


def race(calls: list[Callable[[], object]]) -> list[tuple[str, object]]:
    """Run the calls from one thread each, released together; ("ok"|"refused"|"crashed", x)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[tuple[str, object]] = [("crashed", "thread did not finish")] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = ("ok", call())
        except ApplicationError as exc:
            outcomes[index] = ("refused", exc)
        except Exception as exc:  # noqa: BLE001 - an untyped failure is what we look for
            outcomes[index] = ("crashed", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def assert_model_consistent(model: MLModel) -> None:
    versions = MLModelVersion.objects.filter(model=model)
    champions = versions.filter(status=Status.PRODUCTION)
    assert champions.count() <= 1
    live = versions.filter(status__in=[Status.PRODUCTION, Status.STAGING])
    traffic = sum(live.values_list("traffic_percentage", flat=True))
    if champions.exists():
        assert traffic == 100
    else:
        assert traffic == 0
    assert not versions.filter(is_shadow=True).exclude(status=Status.STAGING).exists()
    audit = selectors.audit_verify_model(model=model)
    assert audit.ok, audit.problem
    sequences = list(ModelTransition.objects.filter(model=model).order_by("sequence")
                     .values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


def assert_typed_refusals(outcomes: list[tuple[str, object]]) -> None:
    crashed = [value for kind, value in outcomes if kind == "crashed"]
    assert crashed == []
    codes = {value.code for kind, value in outcomes if kind == "refused"}
    assert codes <= EXPECTED_REFUSALS


# (traffic, shadow) per thread: two plain deploys, three challengers, one shadow.
DEPLOY_MIX = [(None, False), (None, False), (30, False), (40, False), (50, False), (None, True)]
# The row a successful call writes for its own version: (reason, to_status). A plain deploy
# also writes a "deployed" row for the champion it archives, hence the status.
STARTED_ROW = {
    "plain": ("deployed", Status.PRODUCTION),
    "challenger": ("ab_test_started", Status.STAGING),
    "shadow": ("shadow_started", Status.STAGING),
}


def kind_of(traffic, shadow) -> str:
    return "shadow" if shadow else "plain" if traffic is None else "challenger"


@pytest.mark.parametrize("with_champion", [True, False], ids=["champion", "no-champion"])
def test_concurrent_deploys_leave_one_champion_and_full_traffic(people, with_champion):
    for round_number in range(ROUNDS):
        name = f"race-deploy-{with_champion:d}-{round_number}"
        if with_champion:
            register_deployed_version(**people, name=name, slope=0.5)
        candidates = [register_approved_version(**people, name=name, slope=1.0 + i)
                      for i in range(THREADS)]
        model = candidates[0].model
        started = timezone.now()

        outcomes = race([
            (lambda v=v, t=t, s=s: services.model_version_deploy(
                version=v, user=people["deployer"], traffic=t, shadow=s))
            for v, (t, s) in zip(candidates, DEPLOY_MIX, strict=True)
        ])

        assert_typed_refusals(outcomes)
        assert_model_consistent(model)
        assert MLModelVersion.objects.filter(model=model, status=Status.PRODUCTION).count() == 1
        for version, (traffic, shadow), (outcome, _) in zip(candidates, DEPLOY_MIX, outcomes,
                                                            strict=True):
            reason, to_status = STARTED_ROW[kind_of(traffic, shadow)]
            started_rows = ModelTransition.objects.filter(
                version=version, created_at__gte=started, reason=reason, to_status=to_status,
            ).count()
            assert started_rows == (1 if outcome == "ok" else 0), (version.version, outcome)
        plain_winners = sum(1 for (t, s), (o, _) in zip(DEPLOY_MIX, outcomes, strict=True)
                            if o == "ok" and kind_of(t, s) == "plain")
        assert plain_winners == 2


def test_concurrent_rollbacks_and_deploys_stay_consistent(people):
    for round_number in range(ROUNDS):
        name = f"race-rollback-{round_number}"
        register_deployed_version(**people, name=name, slope=0.5)
        current = register_deployed_version(**people, name=name, slope=0.75)
        newcomers = [register_approved_version(**people, name=name, slope=1.0 + i)
                     for i in range(3)]
        model = current.model
        started = timezone.now()
        deployer = people["deployer"]
        calls = [
            partial(services.model_rollback, model=model, user=deployer, reason="bad"),
            partial(services.model_rollback, model=model, user=deployer, reason="worse"),
            partial(services.model_version_deploy, version=newcomers[0], user=deployer),
            partial(services.model_version_deploy, version=newcomers[1], user=deployer),
            partial(services.model_version_deploy, version=newcomers[2], user=deployer,
                    traffic=25),
            partial(services.model_version_archive, version=current, user=deployer,
                    reason="retire"),
        ]

        outcomes = race(calls)

        assert_typed_refusals(outcomes)
        assert_model_consistent(model)
        rollbacks_ok = sum(1 for kind, _ in outcomes[:2] if kind == "ok")
        rollback_entries = ModelTransition.objects.filter(
            model=model, created_at__gte=started, reason="rollback", to_status=Status.PRODUCTION
        ).count()
        assert rollback_entries == rollbacks_ok
        for version, (kind, _) in zip(newcomers[:2], outcomes[2:4], strict=True):
            deployed_rows = ModelTransition.objects.filter(
                version=version, created_at__gte=started, reason="deployed",
                to_status=Status.PRODUCTION,
            ).count()
            assert deployed_rows == (1 if kind == "ok" else 0)


def test_concurrent_registrations_get_distinct_versions(people):
    for round_number in range(ROUNDS):
        name = f"race-register-{round_number}"

        outcomes = race([
            (lambda i=i, name=name: register_version(user=people["user"], name=name,
                                                     slope=1.0 + i % 2))
            for i in range(THREADS)
        ])

        assert [kind for kind, _ in outcomes] == ["ok"] * THREADS
        model = MLModel.objects.get(name=name)
        versions = sorted(MLModelVersion.objects.filter(model=model)
                          .values_list("version", flat=True), key=lambda v: int(v.split(".")[1]))
        assert versions == [f"1.{minor}.0" for minor in range(THREADS)]
        assert ModelTransition.objects.filter(model=model).count() == 2 * THREADS
        assert_model_consistent(model)
