"""The registry's state machine: review, deployment, tests, archiving and rollback.

Every service is atomic and locks the model's row first (SELECT ... FOR UPDATE), so all
changes to one model, its versions' traffic and its audit chain are serialised; the admin,
the commands and the Celery tasks all come through here. The permission names and the
check that every registry write applies live here too. Registration (training -> testing)
and artifact clean-up are in mlregistry.registration; the locks, audit rows and traffic
rebalancing both build on are in mlregistry.transitions.

    training -> testing (validated) -> staging (approved) -> production (deployed)
    staging -> testing (approval withdrawn); any -> archived; archived -> production by rollback
"""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from core.errors import (
    GateFailedError,
    IllegalTransitionError,
    PermissionDeniedError,
    TrafficLimitError,
    ValidationError,
)
from mlregistry import artifacts, preconditions, selectors, transitions
from mlregistry.models import (
    EXPERIMENT_NAME_MAX_LENGTH,
    EXPERIMENT_NAME_PATTERN,
    MODEL_DESCRIPTION_MAX_LENGTH,
    MLModel,
    MLModelVersion,
    Status,
)


def system_user_get() -> AbstractBaseUser:
    """The account scheduled work acts as (a data scientist that cannot log in)."""
    user, created = get_user_model().objects.get_or_create(
        username=settings.SYSTEM_USERNAME, defaults={"is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name="Data scientists"))
    return user


def _require_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError(f"{what} must not be empty", details={"field": what})
    return value


# --- review -------------------------------------------------------------------------------


def model_version_approve(
    *, version: MLModelVersion, user: AbstractBaseUser, notes: str,
    override_justification: str = "",
) -> MLModelVersion:
    """testing -> staging, by a reviewer who is not the creator."""
    with transaction.atomic():
        _, version = transitions.lock_version(version)
        preconditions.approve_check(version=version, user=user)
        notes = _require_text(notes, "approval notes")
        failed = selectors.failed_gates(version)
        justification = (override_justification or "").strip()
        if failed and not justification:
            raise GateFailedError(
                f"cannot approve {version}: gate(s) {', '.join(failed)} failed; an override "
                "needs a written justification",
                details={"failed_gates": failed},
            )
        now = timezone.now()
        transition_notes = (notes if not failed
                            else f"{notes}\nOverride of {', '.join(failed)}: {justification}")
        transitions.set_state(
            version, actor=user, reason="approved", notes=transition_notes, now=now,
            status=Status.STAGING, approved_by=user, approved_at=now, approval_notes=notes,
            override_justification=justification if failed else "",
        )
    return version


def model_version_reject(*, version: MLModelVersion, user: AbstractBaseUser,
                         notes: str) -> MLModelVersion:
    """A rejected candidate is archived with the reviewer's notes. Only a candidate that
    never went live: it holds no traffic to hand back."""
    with transaction.atomic():
        _, version = transitions.lock_version(version)
        preconditions.reject_check(version=version, user=user)
        notes = _require_text(notes, "rejection notes")
        transitions.set_state(version, actor=user, reason="rejected", notes=notes,
                              now=timezone.now(), status=Status.ARCHIVED,
                              approval_notes=notes)
    return version


def model_version_types_trust(*, version: MLModelVersion, user: AbstractBaseUser,
                              types: list[str], reason: str) -> MLModelVersion:
    """A reviewer trusts types of a candidate's model file that policy does not trust
    (docs/registry.md#safe-model-files). The manifest gains them (`trusted_types`), so the
    version's model_sha256 changes; one sealed `types_trusted` row binds the new manifest
    and names the types and the reason. The artifact files stay as they are."""
    with transaction.atomic():
        _, version = transitions.lock_version(version)
        preconditions.types_trust_check(version=version, user=user)
        reason = _require_text(reason, "reason")
        pending = artifacts.types_needing_review(version.artifact_manifest)
        chosen = sorted(set(types or []))
        unknown = [name for name in chosen if name not in pending]
        if not chosen or unknown:
            raise ValidationError(
                f"choose types that await trust in {version}: {', '.join(pending)}"
                + (f" (not awaiting: {', '.join(unknown)})" if unknown else ""),
                details={"field": "types", "awaiting": pending})
        bundle = artifacts.manifest_trusting(manifest=version.artifact_manifest,
                                             trusted_types=chosen)
        artifacts.bundle_save(bundle)
        version.artifact_manifest = bundle.manifest
        version.model_sha256 = bundle.model_sha256
        version.save(update_fields=["artifact_manifest", "model_sha256"])
        transitions.transition_record(
            version=version, actor=user, from_status=version.status,
            to_status=version.status, reason=selectors.TYPES_TRUSTED_REASON,
            notes=f"trusted {', '.join(chosen)}: {reason}", now=timezone.now())
    return version


AUTO_DEPLOY_NOTES = "auto-deployed (AUTO_DEPLOY)"


def model_version_auto_deploy(*, version: MLModelVersion, user: AbstractBaseUser) -> MLModelVersion:
    """The platform's own approval and deployment of a retrained candidate
    (docs/monitoring.md#retraining).

    Not a path for people, who approve and deploy above: four eyes cannot apply to a
    version no person made, so instead it demands that settings.AUTO_DEPLOY is on, that
    `user` is the system account that trained the version, and that every gate passed.
    testing -> staging -> production in one transaction; both audit rows say
    "auto-deployed (AUTO_DEPLOY)".
    """
    if not settings.AUTO_DEPLOY:
        raise PermissionDeniedError("automatic deployment is off (AUTO_DEPLOY)",
                                    details={"setting": "AUTO_DEPLOY"})
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        if user.get_username() != settings.SYSTEM_USERNAME or version.created_by_id != user.pk:
            raise PermissionDeniedError(
                f"only the system account deploys its own retrained versions automatically; "
                f"{user.get_username()} may not auto-deploy {version}",
                details={"user": user.get_username()},
            )
        if version.status != Status.TESTING:
            raise IllegalTransitionError(
                f"cannot auto-deploy {version}: it is {version.status}, not testing",
                details={"from": version.status, "to": Status.PRODUCTION},
            )
        preconditions.artifact_trusted_check(version)
        failed = selectors.failed_gates(version)
        if failed:
            raise GateFailedError(
                f"cannot auto-deploy {version}: gate(s) {', '.join(failed)} failed",
                details={"failed_gates": failed},
            )
        now = timezone.now()
        transitions.set_state(version, actor=user, reason="auto_approved",
                              notes=AUTO_DEPLOY_NOTES, now=now, status=Status.STAGING,
                              approved_by=user, approved_at=now,
                              approval_notes=AUTO_DEPLOY_NOTES)
        transitions.make_champion(version, model, actor=user, reason="auto_deployed",
                                  notes=AUTO_DEPLOY_NOTES, now=now)
    return version


def model_version_withdraw_approval(*, version: MLModelVersion, user: AbstractBaseUser,
                                    notes: str) -> MLModelVersion:
    """staging -> testing; a live test of the version ends with it."""
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        preconditions.withdraw_check(version=version, user=user)
        notes = _require_text(notes, "notes")
        transitions.set_state(version, actor=user, reason="approval_withdrawn", notes=notes,
                              now=timezone.now(), status=Status.TESTING, traffic=0,
                              shadow=False, approved_by=None, approved_at=None)
        transitions.rebalance_champion(model)
    return version


# --- deployment ---------------------------------------------------------------------------


def _experiment_clean(experiment: str) -> str:
    experiment = (experiment or "").strip()
    if experiment and not re.fullmatch(EXPERIMENT_NAME_PATTERN, experiment):
        raise ValidationError(
            f"an experiment name is 1 to {EXPERIMENT_NAME_MAX_LENGTH} letters, digits, dots, "
            "hyphens or underscores, starting with a letter or digit",
            details={"field": "experiment"})
    return experiment


def _challenger_traffic_check(model: MLModel, version: MLModelVersion, traffic: int,
                              what: str) -> None:
    if not 1 <= traffic <= 99:
        raise ValidationError(f"{what} traffic must be between 1 and 99 percent",
                              details={"traffic": traffic})
    others = sum(transitions.live_tests(model, exclude_pk=version.pk)
                 .values_list("traffic_percentage", flat=True))
    if others + traffic > 100:
        raise TrafficLimitError(
            f"{model.name} challengers already take {others}%; {traffic}% more exceeds 100%",
            details={"challenger_traffic": others, "requested": traffic},
        )


def _test_notes(notes: str, experiment: str) -> str:
    return "\n".join(part for part in (f"experiment {experiment}" if experiment else "", notes)
                     if part)


def model_version_deploy(
    *, version: MLModelVersion, user: AbstractBaseUser, notes: str = "",
    traffic: int | None = None, shadow: bool = False, canary: int | None = None,
    bake_minutes: int | None = None, experiment: str = "",
) -> MLModelVersion:
    """Deploy a staging version.

    Plain: it becomes the champion with 100% of traffic; the old champion is archived and
    live tests end. `traffic=P`: it becomes a challenger with P% beside the champion.
    `shadow=True`: it receives copies of requests and no traffic. `canary=P` with
    `bake_minutes=M`: a challenger with P% that the canary guard promotes to champion after
    M minutes if it stayed healthy, or rolls back (docs/registry.md#canary-deployments).
    `experiment` names an A/B test or a canary in reports, the dashboard and verdicts.
    """
    modes = [mode for mode, chosen in (("traffic", traffic is not None), ("shadow", shadow),
                                       ("canary", canary is not None)) if chosen]
    if len(modes) > 1:
        raise ValidationError(
            f"a version is deployed one way at a time: {' and '.join(modes)} were both asked",
            details={"modes": modes})
    if (canary is None) != (bake_minutes is None):
        raise ValidationError("a canary needs both its traffic share and its bake time",
                              details={"field": "bake_minutes" if canary is not None
                                       else "canary"})
    experiment = _experiment_clean(experiment)
    if experiment and traffic is None and canary is None:
        raise ValidationError("only an A/B test or a canary can be named as an experiment",
                              details={"field": "experiment"})
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        now = timezone.now()
        notes = (notes or "").strip()
        if not modes:
            preconditions.deploy_check(version=version, user=user)
            transitions.make_champion(version, model, actor=user, reason="deployed", notes=notes,
                                      now=now)
            return version
        if canary is not None:
            preconditions.canary_start_check(version=version, user=user)
            if not 1 <= bake_minutes <= settings.CANARY_MAX_BAKE_MINUTES:
                raise ValidationError(
                    f"the bake time must be between 1 and {settings.CANARY_MAX_BAKE_MINUTES} "
                    "minutes (CANARY_MAX_BAKE_MINUTES)", details={"bake_minutes": bake_minutes})
            _challenger_traffic_check(model, version, canary, "canary")
            until = now + timedelta(minutes=bake_minutes)
            plan = (f"canary with {canary}% of traffic for {bake_minutes} min: promoted at "
                    f"{until:%Y-%m-%d %H:%M} UTC if healthy, rolled back on a breach")
            transitions.set_state(version, actor=user, reason="canary_started",
                                  notes=_test_notes("\n".join(filter(None, (plan, notes))),
                                                    experiment),
                                  now=now, traffic=canary, shadow=False, canary_until=until,
                                  experiment=experiment)
        elif shadow:
            preconditions.live_test_start_check(version=version, user=user)
            transitions.set_state(version, actor=user, reason="shadow_started", notes=notes,
                                  now=now, traffic=0, shadow=True)
        else:
            preconditions.live_test_start_check(version=version, user=user)
            _challenger_traffic_check(model, version, traffic, "challenger")
            transitions.set_state(version, actor=user, reason="ab_test_started",
                                  notes=_test_notes(notes, experiment), now=now,
                                  traffic=traffic, shadow=False, experiment=experiment)
        transitions.rebalance_champion(model)
    return version


def _running_canary(version: MLModelVersion, verb: str) -> None:
    if version.canary_until is None:
        raise IllegalTransitionError(
            f"cannot {verb} {version}: it is not a running canary",
            details={"from": version.status, "to": Status.PRODUCTION})


def model_version_canary_promote(*, version: MLModelVersion, summary: str) -> MLModelVersion:
    """The canary guard's promotion of a canary that stayed healthy through its bake time:
    the system deploys it as champion (the deployer who started the canary decided so, on
    this condition); `summary` (the figures judged) is the audit rows' notes."""
    summary = _require_text(summary, "summary")
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        _running_canary(version, "promote")
        transitions.make_champion(version, model, actor=system_user_get(),
                                  reason="canary_promoted", notes=summary, now=timezone.now())
    return version


def model_version_canary_roll_back(*, version: MLModelVersion, reason: str) -> MLModelVersion:
    """The canary guard's rollback of a canary that broke a guard: its traffic returns to
    the champion at once, the system acting; `reason` (the breach with its figures) is the
    audit row's notes. The version stays approved, so a fixed deployment can try again."""
    reason = _require_text(reason, "reason")
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        _running_canary(version, "roll back")
        transitions.set_state(version, actor=system_user_get(), reason="canary_rolled_back",
                              notes=reason, now=timezone.now(), traffic=0, shadow=False)
        transitions.rebalance_champion(model)
    return version


def model_version_end_test(*, version: MLModelVersion, user: AbstractBaseUser,
                           notes: str = "") -> MLModelVersion:
    """Stop an A/B or shadow test: the version stays approved, its traffic returns."""
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        preconditions.live_test_end_check(version=version, user=user)
        transitions.set_state(version, actor=user, reason="test_ended",
                              notes=(notes or "").strip(), now=timezone.now(), traffic=0,
                              shadow=False)
        transitions.rebalance_champion(model)
    return version


def model_version_test_stop(*, version: MLModelVersion, reason: str) -> MLModelVersion:
    """Stop a challenger's A/B test on the platform's own authority (monitoring's automatic
    stop when it breaks the SLO or loses clearly): no permission check, the system user as
    actor, `reason` (why, with the figures) as the audit row's notes. Its traffic returns
    to the champion; the version stays approved."""
    notes = _require_text(reason, "reason")
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        if version.status != Status.STAGING or not version.traffic_percentage:
            raise IllegalTransitionError(
                f"cannot stop a test of {version}: {version.status} -> staging is not allowed "
                "(it is not a challenger in a live A/B test)",
                details={"from": version.status, "to": Status.STAGING},
            )
        transitions.set_state(version, actor=system_user_get(),
                              reason="test_stopped_automatically", notes=notes,
                              now=timezone.now(), traffic=0, shadow=False)
        transitions.rebalance_champion(model)
    return version


def model_version_archive(*, version: MLModelVersion, user: AbstractBaseUser,
                          reason: str) -> MLModelVersion:
    with transaction.atomic():
        model, version = transitions.lock_version(version)
        preconditions.archive_check(version=version, user=user)
        reason = _require_text(reason, "reason")
        now = timezone.now()
        was_champion = version.status == Status.PRODUCTION
        if was_champion:
            # Tests compare against a champion; without one they end.
            transitions.end_tests(model, actor=user, reason="test_ended",
                                  notes="champion archived", now=now)
        transitions.set_state(version, actor=user, reason="archived", notes=reason, now=now,
                              status=Status.ARCHIVED, traffic=0, shadow=False,
                              deprecated_at=now if was_champion else version.deprecated_at)
        transitions.rebalance_champion(model)
    return version


DESCRIBED_REASON = "described"


def model_describe(*, model: MLModel, user: AbstractBaseUser, description: str) -> MLModel:
    """Change what a model is for; the only change to a model after registration. One
    sealed audit row about the model carries the new text."""
    description = (description or "").strip()
    if len(description) > MODEL_DESCRIPTION_MAX_LENGTH:
        raise ValidationError(
            f"a description has at most {MODEL_DESCRIPTION_MAX_LENGTH} characters",
            details={"field": "description"})
    with transaction.atomic():
        model = transitions.lock_model(model.pk)
        preconditions.describe_check(user=user)
        if description == model.description:
            raise ValidationError(f"{model.name} already has this description",
                                  details={"field": "description"})
        model.description = description
        model.save(update_fields=["description"])
        transitions.model_transition_record(model=model, actor=user, reason=DESCRIBED_REASON,
                                            notes=description, now=timezone.now())
    return model


@dataclass(frozen=True)
class RollbackPlan:
    model: str
    from_version: str | None
    to_version: str
    ended_tests: list[str]
    dry_run: bool


def model_rollback(
    *, model: MLModel, user: AbstractBaseUser, reason: str, to_version: str | None = None,
    dry_run: bool = False,
) -> RollbackPlan:
    """Restore the previous production version (or `to_version`) in one transaction.

    The target's artifacts are verified first: a rollback never restores a version that
    could not be served.
    """
    with transaction.atomic():
        model = transitions.lock_model(model.pk)
        target = preconditions.rollback_check(model=model, user=user, to_version=to_version)
        reason = _require_text(reason, "reason")
        artifacts.bundle_verify(manifest=target.artifact_manifest, model_sha256=target.model_sha256)
        current = transitions.champion(model)
        tests = [test.version for test in transitions.live_tests(model)]
        plan = RollbackPlan(model=model.name, from_version=current.version if current else None,
                            to_version=target.version, ended_tests=tests, dry_run=dry_run)
        if dry_run:
            return plan
        target = MLModelVersion.objects.select_for_update().get(pk=target.pk)
        transitions.make_champion(target, model, actor=user, reason="rollback", notes=reason,
                                  now=timezone.now())
    return plan
