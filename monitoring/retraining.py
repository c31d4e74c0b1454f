"""Retraining (docs/monitoring.md#retraining): when a model is retrained, and what follows a
retrain.

Checked daily (monitoring.tasks.retraining_check_task) and by hand (`manage.py
retrain_if_needed`), for every model whose production version a recipe trained. Triggers,
each measured from the model's last training (its newest version), so that evidence a
candidate was already trained on does not queue another candidate while it awaits review:

- age: the last training is RETRAIN_MAX_AGE_DAYS old or more;
- labels: at least RETRAIN_MIN_NEW_LABELS predictions of the model got their outcome since;
- alert: a performance or drift alert of the model was opened since, and is still open.

A retrain is a TrainingJob (one per model at a time: the job table's unique constraint)
that trains the recipe on its latest dataset plus the model's logged predictions with
feedback, and registers the candidate in `testing` with its gates. Then reviewers get one
email; the candidate is deployed only when settings.AUTO_DEPLOY is on and every gate
passed. A failed retrain raises a `retrain_failed` alert.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import ApplicationError
from core.ml.recipes import recipes_all
from mlregistry import selectors as registry
from mlregistry import services as registry_services
from mlregistry.models import MLModel, MLModelVersion, Status
from monitoring import alerts, review_requests
from monitoring.models import Alert
from predictions import selectors as prediction_selectors
from training import services as training
from training.models import TrainingJob

logger = logging.getLogger("pulselytics.monitoring")

TRIGGER_ALERT_KINDS = (Alert.Kind.PERFORMANCE, Alert.Kind.DRIFT)


@dataclass
class RetrainingCheck:
    """One model's outcome of a check: what fired, and the job queued or why none was."""

    model_name: str
    recipe: str | None
    client_id: str
    triggers: list[str] = field(default_factory=list)
    skipped: str = ""
    job: TrainingJob | None = None


def _newest_version(model: MLModel) -> MLModelVersion | None:
    return model.versions.order_by("-created_at", "-pk").first()


def _triggers(model: MLModel, now: datetime) -> list[str]:
    last = _newest_version(model)
    if last is None:
        return []
    fired = []
    age = now - last.created_at
    limit = settings.RETRAIN_MAX_AGE_DAYS
    if age >= timedelta(days=limit):
        fired.append(f"age: last trained {age.total_seconds() / 86400:.1f} days ago "
                     f"({last.version}; limit {limit:g})")
    labels = prediction_selectors.prediction_feedback_count(model_name=model.name,
                                                            since=last.created_at)
    if labels >= settings.RETRAIN_MIN_NEW_LABELS:
        fired.append(f"labels: {labels} new labelled predictions since {last.version} "
                     f"(at least {settings.RETRAIN_MIN_NEW_LABELS})")
    open_alerts = Alert.objects.filter(
        model_name=model.name, kind__in=TRIGGER_ALERT_KINDS, resolved_at__isnull=True,
        first_seen__gt=last.created_at,
    ).order_by("first_seen", "pk")
    for alert in open_alerts:
        version = f" on {alert.version}" if alert.version else ""
        fired.append(f"alert: open {alert.kind} alert ({alert.severity}){version} "
                     f"since {alert.first_seen:%Y-%m-%d %H:%M}")
    return fired


def retraining_triggers(*, model_name: str, now: datetime | None = None) -> list[str]:
    """One sentence per trigger that fires for the model (empty: none)."""
    return _triggers(registry.model_get(name=model_name), now or timezone.now())


def _check(model: MLModel, production: MLModelVersion, now: datetime) -> RetrainingCheck:
    recipe = (production.hyperparameters or {}).get("recipe")
    check = RetrainingCheck(model_name=model.name, recipe=recipe, client_id=model.client_id,
                            triggers=_triggers(model, now))
    if not recipe:
        check.skipped = "registered from outside (no recipe): cannot be retrained here"
    elif recipe not in recipes_all():
        check.skipped = f"recipe {recipe} is not installed (settings.PULSELYTICS_RECIPES)"
    elif not check.triggers:
        check.skipped = "no trigger fired"
    else:
        active = TrainingJob.objects.filter(
            recipe=recipe, client_id=model.client_id,
            state__in=[TrainingJob.State.QUEUED, TrainingJob.State.RUNNING]).first()
        if active is not None:
            check.skipped = f"training job #{active.pk} is already {active.state}"
    return check


def retraining_check(*, now: datetime | None = None, model_name: str | None = None,
                     dry_run: bool = False) -> list[RetrainingCheck]:
    """Check every model with a production version (or one) and queue the retrains due.

    Running jobs whose worker died are failed and cleaned up first, so a crashed retrain
    never blocks the next one. A dry run changes nothing.
    """
    now = now or timezone.now()
    models = MLModel.objects.order_by("name")
    if model_name is not None:
        models = models.filter(pk=registry.model_get(name=model_name).pk)
    if not dry_run:
        training.training_job_recover_stale()  # by the clock: `now` may be a what-if
    checks = []
    for model in models:
        production = registry.model_production_version(model=model)
        if production is None:
            continue
        check = _check(model, production, now)
        checks.append(check)
        if check.skipped or dry_run:
            continue
        try:
            check.job = training.training_job_create(
                recipe_name=check.recipe, client_id=model.client_id,
                user=registry_services.system_user_get(), include_feedback=True,
                reason="retrain: " + "; ".join(check.triggers))
        except training.TrainingInProgressError:
            check.skipped = "a training job was queued concurrently"
    return checks


def retraining_check_all(*, now: datetime | None = None) -> list[TrainingJob]:
    """The scheduled check: the jobs it queued."""
    return [check.job for check in retraining_check(now=now) if check.job is not None]


# --- after a retrain ------------------------------------------------------------------------


def retrain_job_finished(*, job: TrainingJob) -> None:
    """Called by the training service when a retrain job ends: alert on failure, else
    auto-deploy (only with AUTO_DEPLOY and every gate passed) and tell the reviewers."""
    model_name = training.client_model_name(job.recipe, job.client_id)
    if job.state == TrainingJob.State.FAILED:
        alerts.alert_raise(
            kind=Alert.Kind.RETRAIN_FAILED, severity=Alert.Severity.WARNING,
            model_name=model_name, message=f"retraining {model_name} failed: {job.error}",
            payload={"job_id": job.pk, "reason": job.reason, "error": job.error},
        )
        return
    if job.state != TrainingJob.State.SUCCEEDED or job.version is None:
        return
    version = job.version
    if settings.AUTO_DEPLOY and not registry.failed_gates(version):
        try:
            registry_services.model_version_auto_deploy(version=version,
                                                        user=registry_services.system_user_get())
        except ApplicationError:
            logger.exception("auto-deploy of %s failed", version)
        version.refresh_from_db()
    retrain_reviewers_notify(version=version, reason=job.reason)


def _message(version: MLModelVersion, reason: str) -> tuple[str, str]:
    name = version.model.name
    report = version.training_report or {}
    if version.status == Status.PRODUCTION:
        subject = f"{name} {version.version} retrained and auto-deployed"
        status = (f"{registry_services.AUTO_DEPLOY_NOTES}: every gate passed; it is now in "
                  "production. Roll back with `manage.py rollback` if needed.")
    else:
        subject = f"{name} {version.version} retrained: review needed"
        status = ("In testing, not deployed: approve or reject it in the admin "
                  "(ML model versions).")
    lines = [
        f"{name} {version.version} was retrained by the platform.", "",
        f"Why: {reason.removeprefix('retrain: ') or 'requested'}",
        (f"Data: {report.get('dataset', '?')} ({report.get('dataset_rows', '?')} rows) plus "
         f"{report.get('feedback_rows', 0)} logged predictions with feedback; "
         f"{report.get('train_rows', '?')} training and "
         f"{report.get('validation_rows', '?')} validation rows."),
        f"Status: {status}", "", *review_requests.version_evidence_lines(version),
    ]
    return f"[Pulselytics] {subject}", "\n".join(lines) + "\n"


def retrain_reviewers_notify(*, version: MLModelVersion, reason: str = "") -> int:
    """One email to every active user who may approve versions; returns how many got it.

    The only one about the candidate: review_requests leaves a retrain's candidate to it.
    """
    subject, body = _message(version, reason)
    return review_requests.reviewers_email(version=version, subject=subject, body=body)
