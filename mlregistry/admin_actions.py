"""The version admin's registry actions: approve, reject, deploy, A/B or shadow test, end
test, promote winner, roll back.

Each action is a page of its own under /admin/mlregistry/mlmodelversion/<pk>/<action>/:
GET shows the version, what will happen (for a rollback the service's dry-run plan, for
"promote winner" the latest A/B verdict) and a form; POST, CSRF-protected, calls the
registry service. An action is offered (a button in the change view) only when the
version's state allows it and the user may use it; forced anyway, it answers 403 when the
user lacks the permission and otherwise redirects with the reason as an error message.
The services stay the authority: whatever they refuse (four eyes, gates, traffic limits,
a state changed meanwhile) becomes an error message and nothing changes.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from mlregistry import forms, selectors, services
from mlregistry.models import MLModelVersion, Status
from monitoring import ab
from monitoring import selectors as monitoring_selectors
from monitoring.models import ABEvaluation
from core.errors import ApplicationError

# Only for the confirmation page's dry run: the real reason is asked for on that page.
DRY_RUN_REASON = "rollback preview on the admin confirmation page"


def _champion(version: MLModelVersion) -> MLModelVersion | None:
    return selectors.model_production_version(model=version.model)


def _in_test(version: MLModelVersion) -> bool:
    live = bool(version.traffic_percentage or version.is_shadow)
    return version.status == Status.STAGING and live


def _previous_production_exists(version: MLModelVersion) -> bool:
    return MLModelVersion.objects.filter(
        model_id=version.model_id, status=Status.ARCHIVED, deployed_at__isnull=False,
        artifacts_deleted_at__isnull=True,
    ).exists()


def _latest_evaluation(version: MLModelVersion) -> ABEvaluation | None:
    """The model's latest A/B evaluation when it judged this running challenger against the
    current champion: the one ab_promote_winner acts on."""
    if version.status != Status.STAGING or not version.traffic_percentage:
        return None
    latest = monitoring_selectors.ab_evaluation_latest(model_name=version.model.name)
    champion = _champion(version)
    if latest is None or champion is None:
        return None
    if (latest.challenger_id, latest.champion_id) != (version.pk, champion.pk):
        return None
    return latest


def _rollback_target(version: MLModelVersion) -> str | None:
    """From the champion's page: the previous production version (the service picks it);
    from a former champion's page: this version."""
    return None if version.status == Status.PRODUCTION else version.version


# --- when each action is possible (state only; permissions are checked separately) --------


def _approve_state(version: MLModelVersion) -> str:
    if version.status != Status.TESTING:
        return f"only testing versions can be approved; {version} is {version.status}"
    return ""


def _reject_state(version: MLModelVersion) -> str:
    if version.status not in (Status.TESTING, Status.STAGING):
        return f"only testing or staging versions can be rejected; {version} is {version.status}"
    return ""


def _deploy_state(version: MLModelVersion) -> str:
    if version.status != Status.STAGING:
        return f"only approved (staging) versions can be deployed; {version} is {version.status}"
    return ""


def _start_test_state(version: MLModelVersion) -> str:
    if version.status != Status.STAGING:
        return f"only approved (staging) versions can be tested; {version} is {version.status}"
    if _in_test(version):
        return f"{version} is already in a live test"
    if _champion(version) is None:
        return f"{version.model.name} has no production version to test {version} against"
    return ""


def _end_test_state(version: MLModelVersion) -> str:
    return "" if _in_test(version) else f"{version} is not in a live A/B or shadow test"


def _promote_state(version: MLModelVersion) -> str:
    evaluation = _latest_evaluation(version)
    if evaluation is None:
        return f"{version} is not a challenger with an A/B evaluation against the champion"
    if evaluation.verdict == ABEvaluation.Verdict.INCONCLUSIVE:
        return f"the latest A/B evaluation of {version} is inconclusive: there is no winner yet"
    return ""


def _rollback_state(version: MLModelVersion) -> str:
    if version.status == Status.PRODUCTION:
        if _previous_production_exists(version):
            return ""
        return f"{version.model.name} has no previous production version to roll back to"
    if version.status == Status.ARCHIVED and version.deployed_at is not None:
        if version.artifacts_deleted_at is None:
            return ""
        return f"the artifacts of {version} were removed by clean-up"
    return (f"only the champion or a former production version can be rolled back to; "
            f"{version} is {version.status}")


# --- what the confirmation page says will happen -------------------------------------------


def _approve_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    gates = version.gate_results or {}
    failed = [(name, gates[name].get("reason", "")) for name in selectors.failed_gates(version)]
    return {"effect": f"{version} goes from testing to staging, approved by you. It receives "
                      "no traffic until a deployer deploys it.",
            "failed_gates": failed}


def _reject_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    effect = f"{version} is archived with your notes; it can no longer be approved or deployed."
    if _in_test(version):
        effect += " Its live test ends and its traffic returns to the champion."
    return {"effect": effect}


def _deploy_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    champion = _champion(version)
    effect = f"{version} becomes the champion of {version.model.name} with 100% of traffic."
    if champion is not None:
        effect += (f" The current champion {champion.version} is archived (a rollback can bring "
                   "it back); running A/B and shadow tests end.")
    return {"effect": effect}


def _ab_test_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    champion = _champion(version)
    return {"effect": f"{version} becomes a challenger beside champion "
                      f"{champion.version if champion else '(none)'} with the share of traffic "
                      "you enter; the champion keeps the rest. The test is evaluated hourly."}


def _shadow_test_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    return {"effect": f"{version} receives copies of {version.model.name}'s requests; its answers "
                      "are logged for comparison, never returned to clients."}


def _end_test_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    what = "its traffic returns to the champion" if version.traffic_percentage else (
        "it stops receiving copies of requests")
    return {"effect": f"The test of {version} ends: {what}. It stays approved (staging)."}


def _promote_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    evaluation = _latest_evaluation(version)
    champion = evaluation.champion.version
    if evaluation.verdict == ABEvaluation.Verdict.CHALLENGER_BETTER:
        effect = (f"The challenger won: {version} becomes the champion with 100% of traffic and "
                  f"{champion} is archived.")
    else:
        effect = (f"The champion won: the test of {version} ends and {champion} keeps all "
                  "traffic.")
    return {"effect": effect, "evaluation": evaluation}


def _rollback_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    try:
        plan = services.model_rollback(model=version.model, user=user, reason=DRY_RUN_REASON,
                                       to_version=_rollback_target(version), dry_run=True)
    except ApplicationError as exc:
        return {"effect": f"{version.model.name} cannot be rolled back.", "problem": exc.message}
    effect = f"{plan.to_version} becomes the champion of {plan.model} again with 100% of traffic"
    effect += f"; {plan.from_version} is archived." if plan.from_version else "."
    if plan.ended_tests:
        effect += f" Running tests end: {', '.join(plan.ended_tests)}."
    return {"effect": effect, "plan": plan}


# --- performing them through the services --------------------------------------------------


def _approve(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    failed = selectors.failed_gates(version)
    version = services.model_version_approve(
        version=version, user=user, notes=data["notes"],
        override_justification=data.get("override_justification", ""))
    override = f", overriding the failed {' and '.join(failed)} gate" if failed else ""
    return f"Approved {version}{override}: it is now staging."


def _reject(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_reject(version=version, user=user, notes=data["notes"])
    return f"Rejected {version}: it is archived."


def _deploy(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    previous = _champion(version)
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"])
    message = f"Deployed {version} as champion with 100% of traffic"
    if previous is not None and previous.pk != version.pk:
        message += f"; {previous.version} is archived"
    return f"{message}."


def _ab_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"],
                                            traffic=data["traffic"])
    champion = _champion(version)
    return (f"Started an A/B test: {version} receives {version.traffic_percentage}% of traffic "
            f"beside champion {champion.version} ({champion.traffic_percentage}%).")


def _shadow_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"],
                                            shadow=True)
    return f"Started a shadow test: {version} receives copies of {version.model.name}'s requests."


def _end_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_end_test(version=version, user=user, notes=data["notes"])
    return f"Ended the test of {version}: it stays approved (staging) with no traffic."


def _promote(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    previous = _champion(version)
    winner = ab.ab_promote_winner(model_name=version.model.name, user=user)
    if winner.pk == version.pk:
        archived = f"; {previous.version} is archived" if previous is not None else ""
        return f"Promoted the A/B winner: {winner} is now champion with 100% of traffic{archived}."
    return f"The champion {winner.version} won the A/B test: the test of {version} ended."


def _rollback(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    plan = services.model_rollback(model=version.model, user=user, reason=data["reason"],
                                   to_version=_rollback_target(version))
    archived = f"; {plan.from_version} is archived" if plan.from_version else ""
    return f"Rolled back {plan.model}: {plan.to_version} is champion again{archived}."


@dataclass(frozen=True)
class VersionAction:
    name: str  # URL segment; the button's id is "action-<name>"
    label: str
    permission: str
    form_class: type[forms.ActionForm]
    state_refusal: Callable[[MLModelVersion], str]  # why not in this state, "" when possible
    # The confirmation page's "effect" (what will happen) and extras.
    describe: Callable[[MLModelVersion, AbstractBaseUser], dict]
    perform: Callable[[MLModelVersion, AbstractBaseUser, dict], str]  # the success message
    four_eyes: bool = False  # refused to the version's creator


ACTIONS = [
    VersionAction("approve", "Approve", services.APPROVE_PERMISSION, forms.ApproveForm,
                  _approve_state, _approve_describe, _approve, four_eyes=True),
    VersionAction("reject", "Reject", services.APPROVE_PERMISSION, forms.RejectForm,
                  _reject_state, _reject_describe, _reject, four_eyes=True),
    VersionAction("deploy", "Deploy as champion", services.DEPLOY_PERMISSION, forms.NotesForm,
                  _deploy_state, _deploy_describe, _deploy),
    VersionAction("ab-test", "Start A/B test", services.DEPLOY_PERMISSION, forms.ABTestForm,
                  _start_test_state, _ab_test_describe, _ab_test),
    VersionAction("shadow-test", "Start shadow test", services.DEPLOY_PERMISSION,
                  forms.NotesForm, _start_test_state, _shadow_test_describe, _shadow_test),
    VersionAction("end-test", "End test", services.DEPLOY_PERMISSION, forms.NotesForm,
                  _end_test_state, _end_test_describe, _end_test),
    VersionAction("promote-winner", "Promote winner", services.DEPLOY_PERMISSION,
                  forms.ConfirmForm, _promote_state, _promote_describe, _promote),
    VersionAction("rollback", "Roll back", services.DEPLOY_PERMISSION, forms.RollbackForm,
                  _rollback_state, _rollback_describe, _rollback),
]
ACTIONS_BY_NAME = {action.name: action for action in ACTIONS}


@dataclass(frozen=True)
class Refusal:
    message: str
    forbidden: bool  # the user lacks the permission: 403 rather than a message


def version_action_refusal(*, action: VersionAction, version: MLModelVersion,
                           user: AbstractBaseUser) -> Refusal | None:
    """Why `user` may not use `action` on `version` now, or None when they may."""
    if not (user.is_active and user.has_perm(action.permission)):
        return Refusal(f"{user.get_username()} may not {action.label.lower()} (needs "
                       f"{action.permission})", forbidden=True)
    if action.four_eyes and version.created_by_id == user.pk:
        return Refusal(f"{user.get_username()} created {version} and may not "
                       f"{action.label.lower()} it (four eyes)", forbidden=False)
    why = action.state_refusal(version)
    return Refusal(f"Cannot {action.label.lower()}: {why}.", forbidden=False) if why else None


class VersionActionsMixin:
    """For MLModelVersionAdmin: the action pages and the buttons that lead to them."""

    version_action_template = "admin/mlregistry/mlmodelversion/action_confirm.html"

    def _action_url_name(self, action: VersionAction) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{action.name}"

    def get_urls(self):
        # Before the admin's own patterns: its catch-all "<path:object_id>/" would match first.
        return [
            path(f"<path:object_id>/{action.name}/",
                 self.admin_site.admin_view(self.version_action_view),
                 {"action_name": action.name}, name=self._action_url_name(action))
            for action in ACTIONS
        ] + super().get_urls()

    def version_actions_offered(self, request: HttpRequest, version: MLModelVersion) -> list[dict]:
        return [
            {"name": action.name, "label": action.label,
             "url": reverse(f"admin:{self._action_url_name(action)}", args=[version.pk],
                            current_app=self.admin_site.name)}
            for action in ACTIONS
            if version_action_refusal(action=action, version=version, user=request.user) is None
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        offered = [] if version is None else self.version_actions_offered(request, version)
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "version_actions": offered})

    def version_action_view(self, request: HttpRequest, object_id: str,
                            action_name: str) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        action = ACTIONS_BY_NAME[action_name]
        version = self.get_object(request, unquote(object_id))
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                             args=[version.pk], current_app=self.admin_site.name)
        refusal = version_action_refusal(action=action, version=version, user=request.user)
        if refusal is not None:
            if refusal.forbidden:
                raise PermissionDenied(refusal.message)
            messages.error(request, refusal.message)
            return redirect(change_url)

        form = action.form_class(request.POST if request.method == "POST" else None,
                                 version=version)
        if form.is_bound and form.is_valid():
            try:
                message = action.perform(version, request.user, form.cleaned_data)
            except ApplicationError as exc:
                messages.error(request, exc.message)
                # Re-offer the form only if the action still applies (someone else may have
                # changed the version meanwhile).
                version.refresh_from_db()
                if version_action_refusal(action=action, version=version, user=request.user):
                    return redirect(change_url)
            else:
                self.log_change(request, version, message)
                messages.success(request, message)
                return redirect(change_url)

        described = action.describe(version, request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.label}: {version}",
            "opts": self.opts,
            "version": version,
            "champion": _champion(version),
            "failed_gate_names": selectors.failed_gates(version),
            "action": action,
            "form": form,
            "change_url": change_url,
            **described,
        }
        return TemplateResponse(request, self.version_action_template, context)
