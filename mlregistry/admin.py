from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin_mixins import (
    ReadOnlyAdminMixin,
    list_cell_code,
    list_cell_text,
    list_cell_who_when,
)
from core.errors import ApplicationError
from core.ml.kinds import PRIMARY_METRIC
from mlregistry import forms, preconditions, selectors, services
from mlregistry.admin_actions import ArtifactCleanupAdminMixin, VersionActionsMixin
from mlregistry.evidence_charts import distribution_charts, importance_chart
from mlregistry.evidence_panels import version_evidence_panels
from mlregistry.evidence_tables import training_details_build
from mlregistry.model_card import gates_summary, model_card_build
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from mlregistry.validation_charts import validation_diagnostics_chart


@admin.register(MLModel)
class MLModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A model's identity (name, task, client, global model) is fixed at registration: it
    decides who is served by what. Nobody edits it here (docs/registry.md#models-and-versions).
    Its description changes on a page of its own, through the audited service."""

    list_display = ["name", "task", "client_id", "created_at"]
    list_filter = ["task"]
    search_fields = ["name", "description", "client_id"]

    def get_urls(self):
        # Before the admin's own patterns: its catch-all "<path:object_id>/" would match.
        return [path("<path:object_id>/describe/", self.admin_site.admin_view(self.describe_view),
                     name="mlregistry_mlmodel_describe"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        may = preconditions.refusal(preconditions.describe_check, user=request.user) is None
        url = reverse("admin:mlregistry_mlmodel_describe", args=[unquote(object_id)],
                      current_app=self.admin_site.name) if may else ""
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "describe_url": url})

    def describe_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        model = self.get_object(request, unquote(object_id))
        if model is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        refusal = preconditions.refusal(preconditions.describe_check, user=request.user)
        if refusal is not None:
            raise PermissionDenied(refusal.message)
        change_url = reverse("admin:mlregistry_mlmodel_change", args=[model.pk],
                             current_app=self.admin_site.name)
        form = forms.DescribeForm(request.POST or None, initial={"description": model.description})
        if request.method == "POST" and form.is_valid():
            try:
                services.model_describe(model=model, user=request.user,
                                        description=form.cleaned_data["description"])
            except ApplicationError as exc:
                form.add_error("description", exc.message)
            else:
                messages.success(request, f"Described {model.name}: one audit row recorded.")
                return redirect(change_url)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": f"Describe {model.name}", "model": model, "form": form,
                   "change_url": change_url}
        return TemplateResponse(request, "admin/mlregistry/mlmodel/describe.html", context)


class ClientFilter(admin.SimpleListFilter):
    title = "client"
    parameter_name = "client"
    GLOBAL = "(global)"  # parentheses never occur in a client id

    def lookups(self, request, model_admin):
        clients = (MLModel.objects.exclude(client_id="").order_by("client_id")
                   .values_list("client_id", flat=True).distinct())
        return [(self.GLOBAL, "global models"), *((client, client) for client in clients)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(model__client_id="" if self.value() == self.GLOBAL else self.value())


# A gate's state as a mark beside its name in the version list (colour alone would not do).
GATE_MARKS = {"passed": "✓", "failed": "✗", "overridden": "!", "not_applicable": "–"}


@admin.register(MLModelVersion)
class MLModelVersionAdmin(ArtifactCleanupAdminMixin, VersionActionsMixin, ReadOnlyAdminMixin,
                          admin.ModelAdmin):
    """Read-only here: every state change goes through mlregistry.services.

    The change view lays out the reviewer's evidence (the model card's data, the audit
    chain, the manifest) from the registry alone: no artifact is loaded to show it.
    """

    # Who and when share a cell and the gate badges are compact, so that the list fits a
    # 1280 px window (core/static/core/admin/lists.css).
    list_display = ["model", "version", "status_badge", "client", "primary_metric",
                    "gate_badges", "created", "approved"]
    list_filter = ["model", "status", ClientFilter]
    search_fields = ["model__name", "version", "model_sha256"]
    list_select_related = ["model", "created_by", "approved_by"]
    fieldsets = [
        (None, {"fields": [("model", "version"), "status", ("traffic_percentage", "is_shadow"),
                           ("created_by", "created_at")]}),
        ("Data and artifacts", {"fields": ["training_dataset_sha256", "training_samples",
                                           "training_duration_seconds", "model_sha256"]}),
        ("Review and deployment", {"fields": ["approved_by", "approved_at", "approval_notes",
                                              "override_justification", "deployed_at",
                                              "deprecated_at", "artifacts_deleted_at"]}),
    ]  # hyperparameters, training report and schema: as tables (evidence/training_details.html)

    class Media:
        css = {"all": ["mlregistry/admin/evidence.css", "mlregistry/admin/validation.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("model", "created_by", "approved_by")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: MLModelVersion) -> str:
        label = obj.status
        if obj.is_shadow:
            label += " · shadow"
        elif obj.status in (Status.PRODUCTION, Status.STAGING) and 0 < obj.traffic_percentage < 100:
            label += f" · {obj.traffic_percentage}%"
        return format_html('<span class="badge status-{}">{}</span>', obj.status, label)

    @admin.display(description="Client", ordering="model__client_id")
    def client(self, obj: MLModelVersion) -> str:
        return obj.model.client_id or "global"

    @admin.display(description="Primary metric")
    def primary_metric(self, obj: MLModelVersion) -> str:
        primary = PRIMARY_METRIC.get(obj.model.task)
        if primary is None:
            return "n/a"
        value = (obj.metrics or {}).get(primary[0])
        return f"{primary[0]} {value:.4f}" if isinstance(value, int | float) else f"{primary[0]} –"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: MLModelVersion) -> str:
        return list_cell_who_when(obj.created_by, obj.created_at)

    @admin.display(description="Approved", ordering="approved_at")
    def approved(self, obj: MLModelVersion) -> str:
        return list_cell_who_when(obj.approved_by, obj.approved_at)

    @admin.display(description="Gates")
    def gate_badges(self, obj: MLModelVersion) -> str:
        # Compact: the state as the badge's colour and mark, in words with the reason in its
        # tooltip; the change page's gates panel spells out each one.
        gates = gates_summary(obj.gate_results, override_justification=obj.override_justification)
        if not gates:
            return "–"
        return format_html_join(
            " ", '<span class="badge gate-{}" title="{}: {}{}">{} {}</span>',
            ((g["state"], g["name"], g["label"], f" – {g['reason']}" if g["reason"] else "",
              GATE_MARKS[g["state"]], g["name"]) for g in gates))

    def render_change_form(self, request, context, add=False, change=False,  # noqa: PLR0917
                           form_url="", obj=None):  # (Django's signature)
        if obj is not None:
            card = model_card_build(version=obj)
            production = selectors.version_production_counterpart(version=obj)
            context.update(card=card, evidence=selectors.model_version_evidence(version=obj),
                           inference=selectors.model_version_inference_path(version=obj),
                           importance_chart=importance_chart(card["importance"]),
                           training_details=training_details_build(
                               training_report=obj.training_report,
                               hyperparameters=obj.hyperparameters,
                               feature_schema=obj.feature_schema, metrics=obj.metrics,
                               training_samples=obj.training_samples),
                           distributions=distribution_charts(
                               schema=obj.feature_schema, profile=obj.reference_profile,
                               production_schema=production.feature_schema if production else None,
                               production_profile=(production.reference_profile if production
                                                   else None),
                               production_version=production.version if production else None),
                           validation_chart=validation_diagnostics_chart(
                               (obj.training_report or {}).get("validation_diagnostics")),
                           evidence_panels=version_evidence_panels(version=obj))
        return super().render_change_form(request, context, add=add, change=change,
                                          form_url=form_url, obj=obj)


@admin.register(ModelTransition)
class ModelTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Narrow cells so that the list fits a 1280 px window (core/static/core/admin/lists.css):
    # the version without its model's name, the status change in one cell, who and when in
    # one; the notes in full, wrapped.
    list_display = ["sequence_number", "model", "version_number", "status_change",
                    "reason_code", "notes_text", "recorded"]
    list_filter = ["model", "to_status", "reason"]
    list_select_related = ["model", "version", "actor"]

    @admin.display(description="#", ordering="sequence")
    def sequence_number(self, obj: ModelTransition) -> int:
        return obj.sequence

    @admin.display(description="Version", ordering="version__version")
    def version_number(self, obj: ModelTransition) -> str:
        return obj.version.version if obj.version else "–"

    @admin.display(description="Status", ordering="to_status")
    def status_change(self, obj: ModelTransition) -> str:
        change = f"{obj.from_status or '–'} → {obj.to_status}"
        if obj.traffic_before != obj.traffic_after:
            change += f" (traffic {obj.traffic_before}% → {obj.traffic_after}%)"
        return change

    @admin.display(description="Reason", ordering="reason")
    def reason_code(self, obj: ModelTransition) -> str:
        return list_cell_code(obj.reason)

    @admin.display(description="Notes")
    def notes_text(self, obj: ModelTransition) -> str:
        return list_cell_text(obj.notes)

    @admin.display(description="Recorded", ordering="created_at")
    def recorded(self, obj: ModelTransition) -> str:
        return list_cell_who_when(obj.actor, obj.created_at)
