"""When each registry action is allowed: one check per action, asked by two callers.

The service calls the check inside its transaction, on the rows it has just locked, and the
error the check raises is the service's refusal. The admin asks the same check through
`refusal()` to decide whether to offer the action and, if not, to say why. So the rules are
written once (docs/registry.md#states-and-transitions, #four-eyes).

A check raises PermissionDeniedError when the user lacks the permission, FourEyesError when
the user made the version (SeparationOfDutiesError, under REQUIRE_SEPARATE_DEPLOYER, when
they approved the version they would deploy), IllegalTransitionError (or
RollbackUnavailableError) when the state does not allow it; input (notes, traffic shares,
gate overrides) is checked by the service itself.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from core.errors import (
    ApplicationError,
    ArtifactNotTrustedError,
    FourEyesError,
    IllegalTransitionError,
    RollbackUnavailableError,
    SeparationOfDutiesError,
)
from core.permissions import require_permission
from mlregistry import artifacts
from mlregistry.models import MLModel, MLModelVersion, Status

APPROVE_PERMISSION = "mlregistry.approve_mlmodelversion"
DEPLOY_PERMISSION = "mlregistry.deploy_mlmodelversion"
REGISTER_PERMISSION = "mlregistry.add_mlmodelversion"


def refusal(check: Callable[..., Any], **arguments) -> ApplicationError | None:
    """The error `check(**arguments)` raises, or None when the action may go ahead."""
    try:
        check(**arguments)
    except ApplicationError as exc:
        return exc
    return None


def _four_eyes(version: MLModelVersion, user: AbstractBaseUser, verb: str) -> None:
    if version.created_by_id == user.pk:
        raise FourEyesError(
            f"{user.get_username()} created {version} and may not {verb} it (four eyes)")


def separate_deployer_check(version: MLModelVersion, user: AbstractBaseUser, verb: str) -> None:
    """Under REQUIRE_SEPARATE_DEPLOYER the approver of a version may not put it live
    (docs/registry.md#four-eyes); also asked by monitoring's "promote winner"."""
    if settings.REQUIRE_SEPARATE_DEPLOYER and version.approved_by_id == user.pk:
        raise SeparationOfDutiesError(
            f"{user.get_username()} approved {version} and may not {verb} it (separation of "
            "duties: another deployer must)",
            details={"setting": "REQUIRE_SEPARATE_DEPLOYER"})


def in_live_test(version: MLModelVersion) -> bool:
    return version.status == Status.STAGING and bool(
        version.traffic_percentage or version.is_shadow)


def _champion(model_id: int) -> MLModelVersion | None:
    return MLModelVersion.objects.filter(model_id=model_id, status=Status.PRODUCTION).first()


# --- review -------------------------------------------------------------------------------


def approve_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    require_permission(user, APPROVE_PERMISSION, "approve model versions")
    _four_eyes(version, user, "approve")
    if version.status != Status.TESTING:
        raise IllegalTransitionError(
            f"cannot approve {version}: {version.status} -> staging is not allowed "
            "(only testing versions can be approved)",
            details={"from": version.status, "to": Status.STAGING},
        )
    artifact_trusted_check(version)


def artifact_trusted_check(version: MLModelVersion) -> None:
    """Only a model file whose every type is trusted can be approved (docs/registry.md#safe-
    model-files): a pickle cannot be inspected, so it is converted first."""
    manifest = version.artifact_manifest or {}
    if artifacts.manifest_holds_pickles(manifest):
        raise ArtifactNotTrustedError(
            f"cannot approve {version}: its model file is a pickle (registered before safe "
            "model files); convert it with `manage.py migrate_artifacts` first")
    pending = artifacts.types_needing_review(manifest)
    if pending:
        raise ArtifactNotTrustedError(
            f"cannot approve {version}: its model file holds types outside the trusted set "
            f"that no reviewer has trusted: {', '.join(pending)} (trust each first)",
            details={"untrusted_types": pending})


def types_trust_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    """Trust the types of a candidate's model file that policy does not (before approval,
    by a reviewer who did not make it)."""
    require_permission(user, APPROVE_PERMISSION, "trust model types")
    _four_eyes(version, user, "trust the types of")
    if version.status != Status.TESTING:
        raise IllegalTransitionError(
            f"cannot trust types of {version}: it is {version.status} (types are trusted "
            "before approval, while it is in testing)",
            details={"from": version.status, "to": version.status})
    if not artifacts.types_needing_review(version.artifact_manifest or {}):
        raise ArtifactNotTrustedError(
            f"{version}'s model file holds no types awaiting trust")


def reject_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    require_permission(user, APPROVE_PERMISSION, "reject model versions")
    _four_eyes(version, user, "reject")
    if version.status not in (Status.TESTING, Status.STAGING):
        raise IllegalTransitionError(
            f"cannot reject {version}: {version.status} -> archived is not allowed "
            "(only testing or staging versions can be rejected)",
            details={"from": version.status, "to": Status.ARCHIVED},
        )
    # Once live, a version leaves through end test, withdraw or archive, never as rejected.
    if in_live_test(version) or version.deployed_at is not None:
        raise IllegalTransitionError(
            f"cannot reject {version}: it is serving traffic or was deployed (only versions "
            "not yet deployed can be rejected; end its test or withdraw the approval first)",
            details={"from": version.status, "to": Status.ARCHIVED},
        )


def withdraw_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    require_permission(user, APPROVE_PERMISSION, "withdraw approvals")
    if version.status != Status.STAGING:
        raise IllegalTransitionError(
            f"cannot withdraw approval of {version}: {version.status} -> testing is not "
            "allowed (only staging versions can go back to testing)",
            details={"from": version.status, "to": Status.TESTING},
        )


# --- deployment ---------------------------------------------------------------------------


def deploy_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    """Deploy as champion (a challenger that won is deployed the same way)."""
    require_permission(user, DEPLOY_PERMISSION, "deploy model versions")
    separate_deployer_check(version, user, "deploy")
    if version.status != Status.STAGING:
        raise IllegalTransitionError(
            f"cannot deploy {version}: {version.status} -> production is not allowed "
            "(only approved (staging) versions can be deployed; archived ones come back "
            "through rollback)",
            details={"from": version.status, "to": Status.PRODUCTION},
        )


def live_test_start_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    """Start an A/B or shadow test of the version beside the champion."""
    require_permission(user, DEPLOY_PERMISSION, "deploy model versions")
    separate_deployer_check(version, user, "start a test of")
    if version.status != Status.STAGING:
        raise IllegalTransitionError(
            f"cannot start a test of {version}: {version.status} -> staging is not allowed "
            "(only approved (staging) versions can be tested)",
            details={"from": version.status, "to": Status.STAGING},
        )
    if in_live_test(version):
        raise IllegalTransitionError(
            f"cannot start a test of {version}: it is already in a live test (end it first)",
            details={"from": version.status, "to": Status.STAGING},
        )
    if _champion(version.model_id) is None:
        raise IllegalTransitionError(
            f"cannot start a test of {version}: {version.model.name} has no production "
            "version",
            details={"from": version.status, "to": Status.STAGING},
        )


def canary_start_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    """Start a canary (docs/registry.md#canary-deployments): a test that ends in deployment
    by the system, so it needs everything a deployment needs, and one canary per model."""
    deploy_check(version=version, user=user)
    live_test_start_check(version=version, user=user)
    running = (MLModelVersion.objects.filter(model_id=version.model_id,
                                             canary_until__isnull=False)
               .exclude(pk=version.pk).values_list("version", flat=True).first())
    if running is not None:
        raise IllegalTransitionError(
            f"cannot start a canary of {version}: {version.model.name} {running} is already "
            "a canary (wait for its promotion or end its test)",
            details={"from": version.status, "to": Status.STAGING, "canary": running},
        )


def live_test_end_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    require_permission(user, DEPLOY_PERMISSION, "end tests")
    if not in_live_test(version):
        raise IllegalTransitionError(
            f"cannot end a test of {version}: {version.status} -> staging is not allowed "
            "(it is not in a live A/B or shadow test)",
            details={"from": version.status, "to": Status.STAGING},
        )


def archive_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    require_permission(user, DEPLOY_PERMISSION, "archive model versions")
    if version.status == Status.ARCHIVED:
        raise IllegalTransitionError(
            f"cannot archive {version}: archived -> archived is not allowed "
            "(it is already archived)",
            details={"from": version.status, "to": Status.ARCHIVED},
        )


def describe_check(*, user: AbstractBaseUser) -> None:
    """Change a model's description (data scientists document their models)."""
    require_permission(user, REGISTER_PERMISSION, "describe models")


def cleanup_check(*, user: AbstractBaseUser) -> None:
    """Clean up artifacts by hand (the daily schedule acts as the system account)."""
    require_permission(user, DEPLOY_PERMISSION, "clean up artifacts")


def rollback_check(*, model: MLModel, user: AbstractBaseUser,
                   to_version: str | None = None) -> MLModelVersion:
    """Roll back to `to_version`, or to the latest prior production version; returns the
    version that would become champion again."""
    require_permission(user, DEPLOY_PERMISSION, "roll back models")
    candidates = MLModelVersion.objects.filter(
        model=model, status=Status.ARCHIVED, deployed_at__isnull=False
    )
    if to_version:
        target = MLModelVersion.objects.filter(model=model, version=to_version).first()
        if target is None:
            raise RollbackUnavailableError(f"{model.name} has no version {to_version}")
        if not candidates.filter(pk=target.pk).exists():
            raise RollbackUnavailableError(
                f"cannot roll back {model.name} to {to_version}: it is {target.status} and "
                "only archived versions that were once in production can be restored"
            )
        if target.artifacts_deleted_at is not None:
            raise RollbackUnavailableError(
                f"cannot roll back {model.name} to {to_version}: its artifacts were removed "
                f"by clean-up on {target.artifacts_deleted_at:%Y-%m-%d}"
            )
        return target
    target = candidates.filter(artifacts_deleted_at__isnull=True).order_by(
        "-deprecated_at", "-pk").first()
    if target is None:
        raise _nothing_to_roll_back_to(model)
    return target


def _nothing_to_roll_back_to(model: MLModel) -> RollbackUnavailableError:
    """The refusal, naming the command that does what the user most likely wants during a
    test: taking the challenger or shadow out of traffic (docs/operations.md#roll-back)."""
    tests = list(MLModelVersion.objects.filter(model=model, status=Status.STAGING)
                 .exclude(traffic_percentage=0, is_shadow=False)
                 .order_by("version").values_list("version", flat=True))
    message = f"{model.name} has no previous production version to roll back to"
    if tests:
        ends = "; ".join(f"manage.py end_test {model.name} {version} --user USERNAME"
                         for version in tests)
        message += (f"; to take {', '.join(tests)} out of traffic, end the test instead: "
                    f"{ends} (or \"End test\" on the version's admin page)")
    return RollbackUnavailableError(message, details={"live_tests": tests})
