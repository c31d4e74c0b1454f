"""The operator's command line: thin shells over the services, one-line failures."""

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from mlregistry import services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from predictions.models import ClientAPIKey
from tests.factories import register_version


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def approved_version(data_scientist, reviewer, slope=2.0):
    version = register_version(user=data_scientist, slope=slope)
    return services.model_version_approve(version=version, user=reviewer, notes="looks good")


def test_approve_moves_testing_to_staging(testing_version, reviewer):
    output = run("approve", "engagement-likes", "1.0.0", "--user", "rita", "--notes", "ok")

    testing_version.refresh_from_db()
    assert testing_version.status == Status.STAGING
    assert testing_version.approved_by == reviewer
    assert "approved by rita" in output


def test_approve_by_creator_fails_and_changes_nothing(testing_version, data_scientist):
    data_scientist.user_permissions.add(Permission.objects.get(codename="approve_mlmodelversion"))
    rows_before = ModelTransition.objects.count()

    with pytest.raises(CommandError, match="four_eyes_violation"):
        run("approve", "engagement-likes", "1.0.0", "--user", "dana", "--notes", "mine")

    testing_version.refresh_from_db()
    assert testing_version.status == Status.TESTING
    assert ModelTransition.objects.count() == rows_before


def test_unknown_model_fails_with_code(reviewer):
    with pytest.raises(CommandError, match="model_not_found"):
        run("approve", "no-such-model", "1.0.0", "--user", "rita", "--notes", "ok")


def test_unknown_user_fails(testing_version):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("approve", "engagement-likes", "1.0.0", "--user", "nobody", "--notes", "ok")


def test_gate_failure_needs_override_justification(data_scientist, reviewer):
    register_version(user=data_scientist, gate_results={"validation": {"passed": False}})

    with pytest.raises(CommandError, match="gate_failed"):
        run("approve", "engagement-likes", "1.0.0", "--user", "rita", "--notes", "ok")
    run("approve", "engagement-likes", "1.0.0", "--user", "rita", "--notes", "ok",
        "--override-justification", "metric dip is noise on a tiny validation set")

    version = MLModelVersion.objects.get(version="1.0.0")
    assert version.status == Status.STAGING
    assert version.override_justification.startswith("metric dip")


def test_reject_archives_with_notes(testing_version, reviewer):
    run("reject", "engagement-likes", "1.0.0", "--user", "rita", "--notes", "leaks the target")

    testing_version.refresh_from_db()
    assert testing_version.status == Status.ARCHIVED
    assert testing_version.transitions.last().notes == "leaks the target"


def test_deploy_plain_makes_champion(data_scientist, reviewer, deployer):
    approved_version(data_scientist, reviewer)

    output = run("deploy", "engagement-likes", "1.0.0", "--user", "dev")

    version = MLModelVersion.objects.get(version="1.0.0")
    assert (version.status, version.traffic_percentage) == (Status.PRODUCTION, 100)
    assert "champion with 100%" in output


def test_deploy_with_traffic_starts_challenger(data_scientist, reviewer, deployer):
    champion = approved_version(data_scientist, reviewer, slope=1.0)
    services.model_version_deploy(version=champion, user=deployer)
    approved_version(data_scientist, reviewer, slope=3.0)

    run("deploy", "engagement-likes", "1.1.0", "--user", "dev", "--traffic", "20")

    traffic = dict(MLModelVersion.objects.values_list("version", "traffic_percentage"))
    assert traffic == {"1.0.0": 80, "1.1.0": 20}


def test_deploy_shadow(data_scientist, reviewer, deployer):
    champion = approved_version(data_scientist, reviewer, slope=1.0)
    services.model_version_deploy(version=champion, user=deployer)
    approved_version(data_scientist, reviewer, slope=3.0)

    run("deploy", "engagement-likes", "1.1.0", "--user", "dev", "--shadow")

    shadow = MLModelVersion.objects.get(version="1.1.0")
    assert shadow.is_shadow and shadow.traffic_percentage == 0


def test_deploy_without_permission_fails(data_scientist, reviewer):
    approved_version(data_scientist, reviewer)

    with pytest.raises(CommandError, match="permission_denied"):
        run("deploy", "engagement-likes", "1.0.0", "--user", "rita")
    assert MLModelVersion.objects.get(version="1.0.0").status == Status.STAGING


def deploy_two(data_scientist, reviewer, deployer):
    first = approved_version(data_scientist, reviewer, slope=1.0)
    services.model_version_deploy(version=first, user=deployer)
    second = approved_version(data_scientist, reviewer, slope=3.0)
    services.model_version_deploy(version=second, user=deployer)
    return first, second


def test_rollback_dry_run_prints_plan_and_changes_nothing(data_scientist, reviewer, deployer):
    deploy_two(data_scientist, reviewer, deployer)
    rows_before = ModelTransition.objects.count()

    output = run("rollback", "engagement-likes", "--user", "dev", "--reason", "spike", "--dry-run")

    assert "would roll back engagement-likes from 1.1.0 to 1.0.0" in output
    assert ModelTransition.objects.count() == rows_before
    assert MLModelVersion.objects.get(status=Status.PRODUCTION).version == "1.1.0"


def test_rollback_restores_previous(data_scientist, reviewer, deployer):
    deploy_two(data_scientist, reviewer, deployer)

    run("rollback", "engagement-likes", "--user", "dev", "--reason", "error spike")

    assert MLModelVersion.objects.get(status=Status.PRODUCTION).version == "1.0.0"
    last = ModelTransition.objects.order_by("-sequence").first()
    assert (last.reason, last.notes, last.actor) == ("rollback", "error spike", deployer)


def test_rollback_without_previous_fails(data_scientist, reviewer, deployer):
    only = approved_version(data_scientist, reviewer)
    services.model_version_deploy(version=only, user=deployer)

    with pytest.raises(CommandError, match="rollback_unavailable"):
        run("rollback", "engagement-likes", "--user", "dev", "--reason", "x")
    assert MLModelVersion.objects.get(status=Status.PRODUCTION).pk == only.pk


@pytest.fixture
def first_ab_test(data_scientist, reviewer, deployer):
    """A champion with a challenger on 20 % of traffic, and no former champion."""
    champion = approved_version(data_scientist, reviewer, slope=1.0)
    services.model_version_deploy(version=champion, user=deployer)
    challenger = approved_version(data_scientist, reviewer, slope=3.0)
    return services.model_version_deploy(version=challenger, user=deployer, traffic=20)


def rollback_refusal() -> str:
    with pytest.raises(CommandError) as refused:
        run("rollback", "engagement-likes", "--user", "dev", "--reason", "x")
    return str(refused.value)


def test_rollback_during_the_first_ab_test_names_the_command_that_ends_it(first_ab_test):
    refusal = rollback_refusal()

    assert (f"manage.py end_test engagement-likes {first_ab_test.version} --user USERNAME"
            in refusal)
    first_ab_test.refresh_from_db()
    assert first_ab_test.traffic_percentage == 20  # the refusal changed nothing


def test_the_command_the_rollback_refusal_names_ends_the_test(first_ab_test):
    named = rollback_refusal().split("end the test instead: manage.py ")[1].split(" (")[0]

    run(*named.replace("USERNAME", "dev").split())

    first_ab_test.refresh_from_db()
    assert (first_ab_test.status, first_ab_test.traffic_percentage) == (Status.STAGING, 0)


def test_verify_audit_ok(testing_version):
    assert "engagement-likes: OK (2 rows)" in run("verify_audit")


def test_verify_audit_names_edited_row(testing_version):
    row = testing_version.transitions.order_by("sequence").last()
    ModelTransition.objects.filter(pk=row.pk).update(notes="rewritten history")

    with pytest.raises(CommandError, match=f"row id={row.pk}"):
        run("verify_audit", "engagement-likes")


def test_production_at_answers_past_instants(data_scientist, reviewer, deployer):
    first = approved_version(data_scientist, reviewer, slope=1.0)
    before_any = timezone.now()
    services.model_version_deploy(version=first, user=deployer)
    during_first = timezone.now()
    second = approved_version(data_scientist, reviewer, slope=3.0)
    services.model_version_deploy(version=second, user=deployer)
    during_second = timezone.now()
    services.model_rollback(model=first.model, user=deployer, reason="regression")

    assert run("production_at", "engagement-likes", during_first.isoformat()).split()[0] == "1.0.0"
    assert run("production_at", "engagement-likes", during_second.isoformat()).split()[0] == "1.1.0"
    assert run("production_at", "engagement-likes",
               timezone.now().isoformat()).split()[0] == "1.0.0"
    with pytest.raises(CommandError, match="no production version"):
        run("production_at", "engagement-likes", before_any.isoformat())


def test_list_versions_shows_each_version(data_scientist, reviewer, deployer):
    deploy_two(data_scientist, reviewer, deployer)

    lines = run("list_versions", "engagement-likes").splitlines()

    assert lines[1].split()[:3] == ["1.1.0", "production", "100%"]
    assert lines[2].split()[:3] == ["1.0.0", "archived", "0%"]


def test_create_api_key_prints_a_valid_key_alone(db):
    output = run("create_api_key", "crm-sync")

    key = output.strip()
    assert output.count("\n") == 1
    assert ClientAPIKey.objects.is_valid(key)
    assert ClientAPIKey.objects.get_from_key(key).name == "crm-sync"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_manage_py_failure_exits_non_zero_with_one_line(data_scientist):
    register_version(user=data_scientist)
    db = connection.settings_dict
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base"}

    result = subprocess.run(
        [sys.executable, "manage.py", "approve", "engagement-likes", "1.0.0", "--user", "dana",
         "--notes", "self-approval"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: permission_denied: dana may not approve model versions "
        "(needs mlregistry.approve_mlmodelversion)"
    ]
    assert MLModelVersion.objects.get().status == Status.TESTING


def test_list_versions_shows_failed_gates(data_scientist):
    register_version(user=data_scientist, gate_results={"validation": {"passed": True},
                                                        "fairness": {"passed": False}})

    assert run("list_versions", "engagement-likes").splitlines()[1].endswith("FAILED fairness")
