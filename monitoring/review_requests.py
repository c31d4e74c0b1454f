"""Review requests (docs/registry.md#four-eyes): the reviewers are e-mailed when a version
awaits review, whoever registered it.

A sealed row that moves a version into `testing` (its registration's `validated` row, or its
approval withdrawn) sends one e-mail, once the row has committed, to every active user who
holds the approve permission and has an e-mail address, but the version's creator and the
row's actor: four eyes, the creator may not review it, and whoever acted knows.

A candidate that a retrain on feedback registers is the exception: the retrain's follow-up
(monitoring.retraining.retrain_job_finished) tells the reviewers once the job has ended,
saying why it retrained and whether AUTO_DEPLOY deployed the candidate, so that they get one
e-mail about it, not two.
"""

import logging
from smtplib import SMTPException

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q

from mlregistry.models import MLModelVersion, ModelTransition, Status
from mlregistry.preconditions import APPROVE_PERMISSION
from training.models import TrainingJob
from training.services import client_model_name

logger = logging.getLogger("pulselytics.monitoring")

REGISTRATION_REASON = "registered"
VALIDATED_REASON = "validated"


def reviewer_emails(*, exclude_user_ids: set[int] = frozenset()) -> list[str]:
    """The addresses of every active user who may approve versions, but `exclude_user_ids`."""
    # Named: with_perm needs the backend that holds permissions once there are several
    # (django-axes adds one for the admin login, docs/operations.md#admin-login).
    reviewers = get_user_model()._default_manager.with_perm(
        APPROVE_PERMISSION, is_active=True, backend="django.contrib.auth.backends.ModelBackend"
    ).exclude(pk__in=exclude_user_ids)
    return sorted({email for email in reviewers.values_list("email", flat=True) if email})


def reviewers_email(*, version: MLModelVersion, subject: str, body: str,
                    exclude_user_ids: set[int] = frozenset()) -> int:
    """One e-mail about `version` to the reviewers (see `reviewer_emails`); returns how many
    got it. A mail failure is logged, not raised: the version's change stands either way."""
    recipients = reviewer_emails(exclude_user_ids=exclude_user_ids)
    if not recipients:
        logger.warning("no reviewer with an email address to tell about %s", version)
        return 0
    try:
        send_mail(subject, body, settings.ALERT_EMAIL_FROM, recipients)
    except (SMTPException, OSError) as exc:
        logger.warning("could not email reviewers about %s: %s", version, exc)
        return 0
    return len(recipients)


def _figure(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def version_evidence_lines(version: MLModelVersion) -> list[str]:
    """What a reviewer reads first: the gates, and the validation metrics beside the
    production version's."""
    lines = ["Gates:"]
    for gate, result in sorted((version.gate_results or {}).items()):
        verdict = "passed" if result.get("passed") else "FAILED"
        lines.append(f"  {gate}: {verdict} ({result.get('reason', '')})")
    production = MLModelVersion.objects.filter(model=version.model, status=Status.PRODUCTION
                                               ).exclude(pk=version.pk).first()
    lines += ["", "Validation metrics" + (f" (production {production.version} in brackets):"
                                          if production else ":")]
    for metric, value in sorted((version.metrics or {}).items()):
        if isinstance(value, int | float):
            before = (production.metrics or {}).get(metric) if production else None
            lines.append(f"  {metric}: {_figure(value)}"
                         + (f" ({_figure(before)})" if before is not None else ""))
    return lines


def version_review_request(*, transition_id: int) -> int:
    """E-mail the reviewers when the committed row `transition_id` made a version await
    review; returns how many got it (0 for any other row)."""
    row = (ModelTransition.objects.select_related("version__model", "version__created_by",
                                                  "actor")
           .filter(pk=transition_id).first())
    if (row is None or row.version is None or row.to_status != Status.TESTING
            or row.from_status == Status.TESTING):
        return 0
    version = row.version
    if row.reason == VALIDATED_REASON and _retrain_candidate(version):
        return 0
    name = f"{version.model.name} {version.version}"
    if row.reason == VALIDATED_REASON:
        registered = version.transitions.filter(reason=REGISTRATION_REASON).first()
        why = [f"{name} was registered by {version.created_by.get_username()}."]
        if registered is not None and registered.notes:
            why.append(f"Notes: {registered.notes}")
    else:
        why = [f"{name} went back to testing ({row.reason}, by {row.actor.get_username()}).",
               f"Notes: {row.notes}"]
    lines = [*why, "", "Status: in testing, awaiting review: approve or reject it in the admin "
             "(ML model versions), or with `manage.py approve` / `reject`.", "",
             *version_evidence_lines(version)]
    return reviewers_email(version=version, subject=f"[Pulselytics] {name}: review needed",
                           body="\n".join(lines) + "\n",
                           exclude_user_ids={version.created_by_id, row.actor_id})


def _retrain_candidate(version: MLModelVersion) -> bool:
    """Whether a retrain on feedback made `version`: its job records the version when it
    ends, after the registration committed, so a job of its model still running as its
    creator counts too."""
    jobs = TrainingJob.objects.filter(include_feedback=True).filter(
        Q(version=version) | Q(state=TrainingJob.State.RUNNING,
                               requested_by_id=version.created_by_id))
    return any(job.version_id == version.pk
               or client_model_name(job.recipe, job.client_id) == version.model.name
               for job in jobs.only("version_id", "recipe", "client_id"))
