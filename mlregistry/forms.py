"""Forms of the version admin's confirmation pages (mlregistry.admin_actions).

They only collect and clean what the registry services take; the rules (four eyes, gates,
allowed transitions, traffic limits) are the services' to enforce.
"""

from django import forms

from mlregistry import artifacts, selectors
from mlregistry.models import (
    EXPERIMENT_NAME_MAX_LENGTH,
    MODEL_DESCRIPTION_MAX_LENGTH,
    MLModelVersion,
)


class DescribeForm(forms.Form):
    """The one thing about a model that changes after registration: what it is for."""

    required_css_class = "required"
    description = forms.CharField(
        max_length=MODEL_DESCRIPTION_MAX_LENGTH, required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="What the model predicts and for whom. The change is kept in the audit "
                  "trail.")


class ActionForm(forms.Form):
    """Base: the admin's look (bold labels on required fields); knows the version."""

    required_css_class = "required"
    # Fields the service requires in some cases though the form lets them through blank.
    service_required: tuple[str, ...] = ()

    def __init__(self, *args, version: MLModelVersion, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.version = version


def _notes(*, label: str, help_text: str, required: bool) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=required,
                           widget=forms.Textarea(attrs={"rows": 4, "cols": 60}))


class ApproveForm(ActionForm):
    notes = _notes(
        label="Approval notes", required=True,
        help_text="Why this version may go to staging: what you checked (metrics against "
                  "production, gates, fairness, drift). Kept in the audit trail.")
    override_justification = _notes(
        label="Override justification", required=False,
        help_text="Required because a gate failed: explain why the version may be approved "
                  "anyway. Kept in the audit trail next to the failed gates.")

    def __init__(self, *args, version: MLModelVersion, **kwargs) -> None:
        super().__init__(*args, version=version, **kwargs)
        if selectors.failed_gates(version):
            # The service refuses a blank justification; it stays the one place of that rule.
            self.service_required = ("override_justification",)
        else:
            del self.fields["override_justification"]


class RejectForm(ActionForm):
    notes = _notes(
        label="Rejection notes", required=True,
        help_text="Why the version is rejected. It is archived with these notes.")


class WithdrawForm(ActionForm):
    notes = _notes(
        label="Why the approval is withdrawn", required=True,
        help_text="The version goes back to testing (a live test of it ends) and needs a new "
                  "approval. Kept in the audit trail.")


class ArchiveForm(ActionForm):
    reason = _notes(
        label="Reason", required=True,
        help_text="Why the version is retired. An archived version can no longer be approved "
                  "or deployed. Kept in the audit trail.")


class TrustTypesForm(ActionForm):
    types = forms.MultipleChoiceField(
        label="Types to trust", widget=forms.CheckboxSelectMultiple,
        help_text="Trust only code you have reviewed: loading the model file creates these "
                  "types and serving runs their methods on every request.")
    reason = _notes(
        label="Reason", required=True,
        help_text="What you checked about each type (its source, who maintains it). Kept in "
                  "the audit trail.")

    def __init__(self, *args, version: MLModelVersion, **kwargs) -> None:
        super().__init__(*args, version=version, **kwargs)
        self.fields["types"].choices = [
            (name, name) for name in artifacts.types_needing_review(version.artifact_manifest)]


class NotesForm(ActionForm):
    """Deploy, shadow test, end test: optional notes for the audit trail."""

    notes = _notes(label="Notes", required=False,
                   help_text="Optional; recorded in the audit trail with this step.")


def _experiment() -> forms.CharField:
    return forms.CharField(
        label="Experiment name", required=False, max_length=EXPERIMENT_NAME_MAX_LENGTH,
        help_text="Optional; names the test in evaluations, the dashboard, alerts and the "
                  "audit trail (letters, digits, dots, hyphens, underscores).")


class ABTestForm(NotesForm):
    traffic = forms.IntegerField(
        label="Challenger traffic (%)", min_value=1, max_value=99,
        help_text="Share of requests (1–99) routed to this version; the champion keeps the "
                  "rest (minus other challengers).")
    experiment = _experiment()

    field_order = ("traffic", "experiment", "notes")


class CanaryForm(NotesForm):
    traffic = forms.IntegerField(
        label="Canary traffic (%)", min_value=1, max_value=99,
        help_text="Share of requests (1–99) routed to this version while it bakes, sticky "
                  "per client routing key; the champion keeps the rest.")
    bake_minutes = forms.IntegerField(
        label="Bake time (minutes)", min_value=1,
        help_text="How long it must stay healthy (SLO, error rate against the champion, "
                  "drift) before the platform promotes it to champion; a breach before then "
                  "rolls it back at once.")
    experiment = _experiment()

    field_order = ("traffic", "bake_minutes", "experiment", "notes")


class RollbackForm(ActionForm):
    reason = _notes(
        label="Reason", required=True,
        help_text="Why the model is rolled back (incident, alert, ticket). Kept in the audit "
                  "trail.")


class ConfirmForm(ActionForm):
    """Actions with nothing to enter (promote winner): the confirmation alone."""
