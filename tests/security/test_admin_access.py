"""Who may use the admin: staff only, each registry action only with its permission, every
state-changing POST only with a CSRF token.

Covered elsewhere, not repeated here (tests/mlregistry/test_admin_actions.py): a data
scientist is not offered approve and a forced POST is 403
(test_data_scientist_is_not_offered_approve_and_forced_post_is_forbidden); the creator
cannot approve their own version even with the permission
(test_creator_cannot_approve_own_version_even_with_the_permission); a POST to approve
without a CSRF token is 403 (test_post_without_csrf_token_is_refused); each action
offered by state and permission. The services enforce the same permissions whatever
calls them (tests/mlregistry/test_services.py: test_review_actions_refused_without_
approve_permission, test_deploy_actions_refused_without_deploy_permission).
"""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from mlregistry.admin_actions import ACTIONS
from mlregistry.models import MLModelVersion, Status
from monitoring.alerts import alert_raise
from monitoring.models import Alert
from predictions.models import ClientAPIKey
from tests.factories import (
    UserFactory,
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

# action -> (the scene's version it applies to, a valid form)
ACTION_POSTS = {
    "approve": ("candidate", {"notes": "checked"}),
    "reject": ("candidate", {"notes": "not good enough"}),
    "deploy": ("approved", {"notes": "go"}),
    "ab-test": ("approved", {"notes": "go", "traffic": 10}),
    "shadow-test": ("approved", {"notes": "go"}),
    "end-test": ("challenger", {"notes": "stop"}),
    "promote-winner": ("challenger", {}),
    "rollback": ("champion", {"reason": "incident 42"}),
}
# Staff without the action's permission (approve/reject need approve_, the rest deploy_).
FORBIDDEN = [("approve", "deployer"), ("approve", "outsider"), ("reject", "deployer"),
             ("reject", "outsider"),
             *[(name, "reviewer") for name in ACTION_POSTS if name not in ("approve", "reject")]]


@pytest.fixture
def scene(people) -> dict:
    """One model with a version in each state an action applies to."""
    register_deployed_version(**people, slope=1.0)  # archived below, the rollback target
    return {
        "champion": register_deployed_version(**people, slope=2.0),
        "challenger": register_deployed_version(**people, slope=3.0, traffic=10),
        "approved": register_approved_version(**people, slope=4.0),
        "candidate": register_version(user=people["user"], slope=5.0),
    }


@pytest.fixture
def alert(db) -> Alert:
    return alert_raise(kind="drift", severity="warning", model_name="engagement-likes",
                       message="drift on followers")


@pytest.fixture
def root(db):
    """A superuser who created none of the versions: every action is open to them."""
    return UserFactory(username="root", is_superuser=True)


def action_url(version: MLModelVersion, action: str) -> str:
    return reverse(f"admin:mlregistry_mlmodelversion_{action}", args=[version.pk])


def admin_pages(scene: dict) -> list[str]:
    """Every admin page: the index, each registered model's list and add page, the version
    pages, each action page, the monitoring dashboard."""
    version = scene["candidate"]
    pages = [reverse("admin:index"), reverse("monitoring_dashboard:index"),
             reverse("admin:mlregistry_mlmodelversion_change", args=[version.pk]),
             reverse("admin:mlregistry_mlmodelversion_history", args=[version.pk])]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
    return pages + [action_url(version, action.name) for action in ACTIONS]


def state(scene: dict) -> dict:
    return {"registry": registry_state(scene["champion"].model_id),
            "alerts": list(Alert.objects.values_list("pk", "acknowledged_at", "resolved_at")),
            "keys": ClientAPIKey.objects.count()}


def assert_login_redirect(response, url: str) -> None:
    assert response.status_code == 302, url
    assert response.url.startswith(f"{reverse('admin:login')}?next="), url


def test_every_admin_page_sends_anonymous_users_to_the_login(scene, client):
    for url in admin_pages(scene):
        assert_login_redirect(client.get(url), url)


def test_every_admin_page_sends_non_staff_users_to_the_login(scene, client):
    # Holding every governance permission does not make a user staff.
    user = UserFactory(username="mallory", is_staff=False,
                       groups=["Data scientists", "Reviewers", "Deployers"])
    client.force_login(user)

    for url in admin_pages(scene):
        assert_login_redirect(client.get(url), url)


def test_non_staff_user_is_shown_the_login_form_not_the_page(scene, client):
    client.force_login(UserFactory(username="mallory", is_staff=False, is_superuser=True))

    response = client.get(reverse("admin:mlregistry_mlmodelversion_changelist"), follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith(reverse("admin:login"))
    assert b"not authorized to access this page" in response.content
    assert str(scene["candidate"]).encode() not in response.content


@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_registry_actions_posted_by_a_non_staff_user_change_nothing(scene, alert, client, who):
    if who == "non-staff":
        client.force_login(UserFactory(username="mallory", is_staff=False, is_superuser=True))
    before = state(scene)

    for action, (target, form) in ACTION_POSTS.items():
        url = action_url(scene[target], action)
        assert_login_redirect(client.post(url, form), url)
    acknowledge = reverse("monitoring_dashboard:acknowledge", args=[alert.pk])
    assert_login_redirect(client.post(acknowledge), acknowledge)

    assert state(scene) == before


@pytest.mark.parametrize(("action", "role"), FORBIDDEN)
def test_staff_without_the_permission_is_forbidden_the_action(scene, request, client, action,
                                                              role):
    client.force_login(request.getfixturevalue(role))
    target, form = ACTION_POSTS[action]
    before = state(scene)

    page = client.get(action_url(scene[target], action))
    response = client.post(action_url(scene[target], action), form)

    assert page.status_code == 403
    assert response.status_code == 403
    assert state(scene) == before


def test_staff_without_the_permission_may_not_create_api_keys(reviewer, client):
    client.force_login(reviewer)

    response = client.post(reverse("admin:predictions_clientapikey_add"), {"name": "mine"})

    assert response.status_code == 403
    assert not ClientAPIKey.objects.exists()


def csrf_posts(scene: dict, alert: Alert) -> list[tuple[str, dict]]:
    """Every state-changing admin POST, with valid data but no CSRF token."""
    posts = [(action_url(scene[target], action), form)
             for action, (target, form) in ACTION_POSTS.items()]
    return [
        *posts,
        (reverse("monitoring_dashboard:acknowledge", args=[alert.pk]), {}),
        (reverse("admin:monitoring_alert_changelist"),
         {"action": "acknowledge", "_selected_action": [alert.pk]}),
        (reverse("admin:predictions_clientapikey_add"), {"name": "forged"}),
        (reverse("admin:logout"), {}),
    ]


def test_every_admin_post_without_a_csrf_token_is_refused(scene, alert, root):
    client = Client(enforce_csrf_checks=True)
    client.force_login(root)
    before = state(scene)

    for url, form in csrf_posts(scene, alert):
        response = client.post(url, form)
        assert response.status_code == 403, url
        assert b"CSRF verification failed" in response.content, url

    assert state(scene) == before
    assert client.get(reverse("admin:index")).status_code == 200  # still logged in


def test_login_post_without_a_csrf_token_is_refused(root):
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("admin:login"), {"username": "root", "password": "pw"})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_admin_post_with_the_csrf_token_goes_through(scene, root):
    # The control for the refusals above: the token is all they lacked.
    client = Client(enforce_csrf_checks=True)
    client.force_login(root)
    url = action_url(scene["candidate"], "approve")
    client.get(url)

    response = client.post(url, {"notes": "checked",
                                 "csrfmiddlewaretoken": client.cookies["csrftoken"].value})

    assert response.status_code == 302
    assert MLModelVersion.objects.get(pk=scene["candidate"].pk).status == Status.STAGING
