"""The version admin's registry actions: trust types, approve, reject, deploy, A/B or shadow test,
end test, roll back, withdraw approval, archive; apps above the registry add theirs (monitoring:
promote winner) with `version_action_register`.

Each action is a page of its own under /admin/mlregistry/mlmodelversion/<pk>/<action>/:
GET shows the version, what will happen (for a rollback the service's dry-run plan, for
"promote winner" the latest A/B verdict) and a form; POST, CSRF-protected, calls the
registry service. An action is offered (a button in the change view) only when the
action's precondition (mlregistry/preconditions.py, the same check the service enforces)
passes for this user and version; forced anyway, it answers 403 when the user lacks the
permission and otherwise redirects with the reason as an error message. Whatever the
service refuses on POST (gates, traffic limits, a state changed meanwhile) becomes an
error message too, and nothing changes.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.errors import ApplicationError, PermissionDeniedError
from mlregistry import forms, preconditions, registration, selectors, services
from mlregistry.models import MLModelVersion, Status

# Only for the confirmation page's dry run: the real reason is asked for on that page.
DRY_RUN_REASON = "rollback preview on the admin confirmation page"


def _champion(version: MLModelVersion) -> MLModelVersion | None:
    return selectors.model_production_version(model=version.model)


def _rollback_target(version: MLModelVersion) -> str | None:
    """From the champion's page: the previous production version (the service picks it);
    from a former champion's page: this version."""
    return None if version.status == Status.PRODUCTION else version.version


# --- when each action is possible: the services' own preconditions ------------------------


def _rollback_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    preconditions.rollback_check(model=version.model, user=user,
                                 to_version=_rollback_target(version))


# --- what the confirmation page says will happen -------------------------------------------


def _approve_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    gates = version.gate_results or {}
    failed = [(name, gates[name].get("reason", "")) for name in selectors.failed_gates(version)]
    return {"effect": f"{version} goes from testing to staging, approved by you. It receives "
                      "no traffic until a deployer deploys it.",
            "failed_gates": failed}


def _trust_types_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    return {"effect": f"The types you tick are trusted for {version}: serving may create them "
                      "when it loads the model file. Approval stays a separate step; once no "
                      "type awaits trust, it can be approved."}


def _reject_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    return {"effect": f"{version} is archived with your notes; it can no longer be approved or "
                      "deployed."}


def _withdraw_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    effect = f"{version} goes back from staging to testing and needs a new approval."
    if preconditions.in_live_test(version):
        effect += " Its live test ends and its traffic returns to the champion."
    return {"effect": effect}


def _archive_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    effect = f"{version} is archived: it can no longer be approved or deployed."
    if version.status == Status.PRODUCTION:
        effect += (f" It is the champion: {version.model.name} is left without a production "
                   "version and its running tests end (a rollback can bring it back).")
    elif preconditions.in_live_test(version):
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


def _canary_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    champion = _champion(version)
    return {"effect": f"{version} takes the share of traffic you enter beside champion "
                      f"{champion.version if champion else '(none)'}. The canary guard compares "
                      "it with the champion every minute (SLO, error rate, drift): a breach "
                      "rolls it back at once with an alert; healthy through the bake time, the "
                      "platform deploys it as champion and archives the current one."}


def _shadow_test_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    return {"effect": f"{version} receives copies of {version.model.name}'s requests; its answers "
                      "are logged for comparison, never returned to clients."}


def _end_test_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    what = "its traffic returns to the champion" if version.traffic_percentage else (
        "it stops receiving copies of requests")
    return {"effect": f"The test of {version} ends: {what}. It stays approved (staging)."}


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


def _trust_types(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_types_trust(version=version, user=user,
                                                 types=data["types"], reason=data["reason"])
    return f"Trusted {', '.join(data['types'])} for {version}."


def _reject(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_reject(version=version, user=user, notes=data["notes"])
    return f"Rejected {version}: it is archived."


def _withdraw(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_withdraw_approval(version=version, user=user,
                                                       notes=data["notes"])
    return f"Withdrew the approval of {version}: it is back in testing."


def _archive(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_archive(version=version, user=user, reason=data["reason"])
    return f"Archived {version}."


def _deploy(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    previous = _champion(version)
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"])
    message = f"Deployed {version} as champion with 100% of traffic"
    if previous is not None and previous.pk != version.pk:
        message += f"; {previous.version} is archived"
    return f"{message}."


def _ab_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"],
                                            traffic=data["traffic"],
                                            experiment=data.get("experiment", ""))
    champion = _champion(version)
    named = f" {version.experiment}" if version.experiment else ""
    return (f"Started an A/B test{named}: {version} receives {version.traffic_percentage}% of "
            f"traffic beside champion {champion.version} ({champion.traffic_percentage}%).")


def _canary(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_deploy(
        version=version, user=user, notes=data["notes"], canary=data["traffic"],
        bake_minutes=data["bake_minutes"], experiment=data.get("experiment", ""))
    return (f"Started a canary: {version} receives {version.traffic_percentage}% of traffic "
            f"and is promoted at {version.canary_until:%Y-%m-%d %H:%M} UTC if it stays "
            "healthy.")


def _shadow_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_deploy(version=version, user=user, notes=data["notes"],
                                            shadow=True)
    return f"Started a shadow test: {version} receives copies of {version.model.name}'s requests."


def _end_test(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    version = services.model_version_end_test(version=version, user=user, notes=data["notes"])
    return f"Ended the test of {version}: it stays approved (staging) with no traffic."


def _rollback(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    plan = services.model_rollback(model=version.model, user=user, reason=data["reason"],
                                   to_version=_rollback_target(version))
    archived = f"; {plan.from_version} is archived" if plan.from_version else ""
    return f"Rolled back {plan.model}: {plan.to_version} is champion again{archived}."


@dataclass(frozen=True)
class VersionAction:
    name: str  # URL segment; the button's id is "action-<name>"
    label: str
    form_class: type[forms.ActionForm]
    # The service's precondition, called as check(version=..., user=...): raises why not.
    check: Callable[..., object]
    # The confirmation page's "effect" (what will happen) and extras.
    describe: Callable[[MLModelVersion, AbstractBaseUser], dict]
    perform: Callable[[MLModelVersion, AbstractBaseUser, dict], str]  # the success message
    extra_template: str = ""  # included in the confirmation page, with the extras above


ACTIONS = [
    VersionAction("trust-types", "Trust types", forms.TrustTypesForm,
                  preconditions.types_trust_check, _trust_types_describe, _trust_types),
    VersionAction("approve", "Approve", forms.ApproveForm, preconditions.approve_check,
                  _approve_describe, _approve),
    VersionAction("reject", "Reject", forms.RejectForm, preconditions.reject_check,
                  _reject_describe, _reject),
    VersionAction("deploy", "Deploy as champion", forms.NotesForm, preconditions.deploy_check,
                  _deploy_describe, _deploy),
    VersionAction("ab-test", "Start A/B test", forms.ABTestForm,
                  preconditions.live_test_start_check, _ab_test_describe, _ab_test),
    VersionAction("canary", "Start canary", forms.CanaryForm, preconditions.canary_start_check,
                  _canary_describe, _canary),
    VersionAction("shadow-test", "Start shadow test", forms.NotesForm,
                  preconditions.live_test_start_check, _shadow_test_describe, _shadow_test),
    VersionAction("end-test", "End test", forms.NotesForm, preconditions.live_test_end_check,
                  _end_test_describe, _end_test),
    VersionAction("rollback", "Roll back", forms.RollbackForm, _rollback_check,
                  _rollback_describe, _rollback),
    VersionAction("withdraw", "Withdraw approval", forms.WithdrawForm,
                  preconditions.withdraw_check, _withdraw_describe, _withdraw),
    VersionAction("archive", "Archive", forms.ArchiveForm, preconditions.archive_check,
                  _archive_describe, _archive),
]
ACTIONS_BY_NAME = {action.name: action for action in ACTIONS}


def version_action_register(action: VersionAction, *, before: str = "rollback") -> None:
    """Add an action of an app above the registry to the version admin (from its ready())."""
    if action.name in ACTIONS_BY_NAME:
        return
    position = next((i for i, known in enumerate(ACTIONS) if known.name == before),
                    len(ACTIONS))
    ACTIONS.insert(position, action)
    ACTIONS_BY_NAME[action.name] = action


@dataclass(frozen=True)
class Refusal:
    message: str
    forbidden: bool  # the user lacks the permission: 403 rather than a message


def version_action_refusal(*, action: VersionAction, version: MLModelVersion,
                           user: AbstractBaseUser) -> Refusal | None:
    """Why `user` may not use `action` on `version` now, or None when they may."""
    error = preconditions.refusal(action.check, version=version, user=user)
    if error is None:
        return None
    # A missing permission is a 403; four eyes and the version's state are explained.
    return Refusal(error.message, forbidden=error.code == PermissionDeniedError.code)


class ArtifactCleanupAdminMixin:
    """For MLModelVersionAdmin: /cleanup/ shows the clean-up's dry run and, on POST, runs it
    as the signed-in user (the same precondition as the service: the deploy permission)."""

    def get_urls(self):
        url_name = f"{self.opts.app_label}_{self.opts.model_name}_cleanup"
        # Before the admin's own patterns: its catch-all "<path:object_id>/" would match.
        return [path("cleanup/", self.admin_site.admin_view(self.artifact_cleanup_view),
                     name=url_name), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        may = preconditions.refusal(preconditions.cleanup_check, user=request.user) is None
        url = (reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_cleanup",
                       current_app=self.admin_site.name) if may else "")
        return super().changelist_view(request, {**(extra_context or {}), "cleanup_url": url})

    def artifact_cleanup_view(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        refusal = preconditions.refusal(preconditions.cleanup_check, user=request.user)
        if refusal is not None:
            raise PermissionDenied(refusal.message)
        changelist_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                                 current_app=self.admin_site.name)
        if request.method == "POST":
            plan = registration.artifact_cleanup(user=request.user)
            messages.success(request, f"Removed {len(plan.paths)} artifact file(s) of "
                                      f"{len(plan.versions)} version(s).")
            return redirect(changelist_url)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "Clean up artifacts", "changelist_url": changelist_url,
                   "plan": registration.artifact_cleanup(dry_run=True, user=request.user),
                   "keep_prior": settings.ARTIFACT_KEEP_PRIOR_PRODUCTION}
        return TemplateResponse(request, "admin/mlregistry/mlmodelversion/cleanup_confirm.html",
                                context)


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

    def version_actions(self, request: HttpRequest, version: MLModelVersion
                        ) -> tuple[list[dict], list[dict]]:
        """(the actions offered to this user, each with its page; the others, each with the
        reason it is not offered: the precondition's refusal)."""
        offered, unavailable = [], []
        for action in ACTIONS:
            refusal = version_action_refusal(action=action, version=version, user=request.user)
            if refusal is None:
                offered.append({"name": action.name, "label": action.label, "url": reverse(
                    f"admin:{self._action_url_name(action)}", args=[version.pk],
                    current_app=self.admin_site.name)})
            else:
                unavailable.append({"name": action.name, "label": action.label,
                                    "reason": refusal.message})
        return offered, unavailable

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        offered, unavailable = [], []
        if version is not None:
            offered, unavailable = self.version_actions(request, version)
        return super().change_view(request, object_id, form_url, {
            **(extra_context or {}), "version_actions": offered,
            "version_actions_unavailable": unavailable})

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
