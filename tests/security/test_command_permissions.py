"""The operator's commands enforce the same permissions as the admin: a user without the
permission gets `permission_denied` and nothing changes.

A CommandError is what `manage.py` turns into exit status 1 with its one-line message on
stderr; tests/mlregistry/test_commands.py checks that end to end in a subprocess
(test_manage_py_failure_exits_non_zero_with_one_line), and that the creator of a version
cannot approve it even holding the permission (test_approve_by_creator_fails_and_changes_
nothing: `four_eyes_violation`). Here the refusals are checked for every registry command
and each of its modes, by a staff user with no permission who created nothing.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import (
    grant_permissions,
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

NAME = "engagement-likes"
# command arguments (after the model name) -> the permission the refusal names
REFUSED = {
    "approve": (["1.3.0", "--notes", "checked"], "approve_mlmodelversion"),
    "approve-with-override": (["1.3.0", "--notes", "checked", "--override-justification",
                               "trust me"], "approve_mlmodelversion"),
    "reject": (["1.3.0", "--notes", "no"], "approve_mlmodelversion"),
    "deploy": (["1.2.0"], "deploy_mlmodelversion"),
    "deploy-as-challenger": (["1.2.0", "--traffic", "10"], "deploy_mlmodelversion"),
    "deploy-as-shadow": (["1.2.0", "--shadow"], "deploy_mlmodelversion"),
    "rollback": (["--reason", "incident 42"], "deploy_mlmodelversion"),
    "rollback-to-version": (["--to", "1.0.0", "--reason", "incident 42"],
                            "deploy_mlmodelversion"),
    "rollback-dry-run": (["--reason", "incident 42", "--dry-run"], "deploy_mlmodelversion"),
}


@pytest.fixture
def scene(people):
    """1.0.0 archived (a rollback target), 1.1.0 champion, 1.2.0 approved, 1.3.0 testing."""
    register_deployed_version(**people, slope=1.0)
    champion = register_deployed_version(**people, slope=2.0)
    register_approved_version(**people, slope=3.0)
    register_version(user=people["user"], slope=4.0)
    return champion


@pytest.mark.parametrize("case", list(REFUSED))
def test_registry_command_without_the_permission_is_permission_denied(scene, outsider, case):
    arguments, permission = REFUSED[case]
    command = case.split("-")[0]
    before = registry_state(scene.model_id)
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command(command, NAME, *arguments, "--user", outsider.username, stdout=out)

    message = str(raised.value)
    assert message.startswith("permission_denied: olly may not ")
    assert f"mlregistry.{permission}" in message
    assert "\n" not in message
    assert out.getvalue() == ""
    assert registry_state(scene.model_id) == before


@pytest.mark.parametrize(("command", "arguments", "role"), [
    ("approve", ["1.3.0", "--notes", "checked"], "deployer"),
    ("deploy", ["1.2.0"], "reviewer"),
    ("rollback", ["--reason", "incident 42"], "reviewer"),
])
def test_the_other_governance_role_is_permission_denied(scene, request, command, arguments,
                                                        role):
    user = request.getfixturevalue(role)
    before = registry_state(scene.model_id)

    with pytest.raises(CommandError, match=r"^permission_denied: "):
        call_command(command, NAME, *arguments, "--user", user.username, stdout=StringIO())

    assert registry_state(scene.model_id) == before


def test_creator_holding_both_permissions_still_cannot_approve(scene, data_scientist):
    creator = grant_permissions(data_scientist, "approve_mlmodelversion",
                                "deploy_mlmodelversion")
    before = registry_state(scene.model_id)

    with pytest.raises(CommandError, match=r"^four_eyes_violation: "):
        call_command("approve", NAME, "1.3.0", "--notes", "mine", "--user", creator.username,
                     stdout=StringIO())

    assert registry_state(scene.model_id) == before
