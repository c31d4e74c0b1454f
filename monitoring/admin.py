from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from core.admin_mixins import (
    ReadOnlyAdminMixin,
    list_cell_code,
    list_cell_text,
    list_cell_time,
    list_cell_who_when,
)
from core.errors import ApplicationError
from monitoring import alerts, schedules
from monitoring.models import (
    ABEvaluation,
    Alert,
    AlertDelivery,
    CanaryCheck,
    DriftReport,
    EstimatedPerformanceReport,
    FairnessReport,
    PerformanceReport,
    RegistryEventDelivery,
    ScheduleChange,
    ShadowEvaluation,
    SLOReport,
)


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("open", "resolved"):
            return queryset.filter(resolved_at__isnull=self.value() == "open")
        return queryset


class AlertDeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AlertDelivery
    fields = ["channel", "target", "state", "attempts", "last_error", "created_at", "sent_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: alerts are raised by the checks; people only acknowledge and resolve them,
    through the actions (monitoring.alerts services)."""

    # Narrow cells so that the list fits a 1280 px window (core/static/core/admin/lists.css):
    # model and version in one, the times in one, who handled it and when in one; the message
    # in full, wrapped.
    list_display = ["severity", "kind", "model_version", "message_text", "count", "seen", "handled"]
    list_filter = [AlertStateFilter, "severity", "kind"]
    search_fields = ["model_name"]
    list_select_related = ["acknowledged_by", "resolved_by"]
    readonly_fields = [field.name for field in Alert._meta.fields]
    inlines = [AlertDeliveryInline]
    actions = ["acknowledge", "resolve"]

    @admin.display(description="Model", ordering="model_name")
    def model_version(self, obj: Alert) -> str:
        return f"{obj.model_name} {obj.version}".strip()

    @admin.display(description="Message")
    def message_text(self, obj: Alert) -> str:
        return list_cell_text(obj.message)

    @admin.display(description="Seen", ordering="last_seen")
    def seen(self, obj: Alert) -> str:
        return format_html("first {}<br>last {}", list_cell_time(obj.first_seen),
                           list_cell_time(obj.last_seen))

    @admin.display(description="Handled", ordering="resolved_at")
    def handled(self, obj: Alert) -> str:
        steps = [(done, list_cell_who_when(user, moment)) for done, user, moment in (
            ("acknowledged", obj.acknowledged_by, obj.acknowledged_at),
            ("resolved", obj.resolved_by, obj.resolved_at)) if moment is not None]
        return format_html_join("", "<div>{} by {}</div>", steps) or "open"

    def _may_handle(self, request) -> bool:
        return request.user.has_perm(alerts.CHANGE_PERMISSION)

    def has_acknowledge_permission(self, request) -> bool:
        return self._may_handle(request)

    def has_resolve_permission(self, request) -> bool:
        return self._may_handle(request)

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        self._handle(request, queryset, alerts.alert_acknowledge, "acknowledged")

    @admin.action(description="Resolve selected alerts", permissions=["resolve"])
    def resolve(self, request, queryset):
        self._handle(request, queryset, alerts.alert_resolve, "resolved")

    def _handle(self, request, queryset, service, done: str) -> None:
        handled = 0
        for alert_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                service(alert_id=alert_id, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
            else:
                handled += 1
        if handled:
            self.message_user(request, f"{handled} alert(s) {done}.", messages.SUCCESS)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "alert", "channel", "target", "state", "attempts", "last_error",
                    "created_at", "sent_at"]
    list_filter = ["state", "channel"]
    list_select_related = ["alert"]
    search_fields = ["alert__model_name", "target"]
    readonly_fields = [field.name for field in AlertDelivery._meta.fields]


@admin.register(RegistryEventDelivery)
class RegistryEventDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: one row per sealed registry row sent to REGISTRY_WEBHOOK_URL
    (docs/api.md#registry-events), written by monitoring.registry_events."""

    list_display = ["pk", "event", "state", "attempts", "response_status", "error",
                    "created_at", "sent_at"]
    list_filter = ["state"]
    list_select_related = ["transition__model", "transition__version"]
    search_fields = ["transition__model__name", "transition__reason"]
    readonly_fields = [field.name for field in RegistryEventDelivery._meta.fields]

    @admin.display(description="Event", ordering="transition__model__name")
    def event(self, obj: RegistryEventDelivery) -> str:
        row = obj.transition
        parts = [row.model.name, row.version.version if row.version_id else "",
                 f"#{row.sequence}", row.reason]
        return " ".join(part for part in parts if part)

    @admin.display(description="Last error")
    def error(self, obj: RegistryEventDelivery) -> str:
        return list_cell_text(obj.last_error)


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "version", "status", "dataset_drift",
                    "n_current", "n_reference"]
    list_filter = ["status", "dataset_drift", "model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"


@admin.register(PerformanceReport)
class PerformanceReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "version", "arm", "n_labelled", "metrics"]
    list_filter = ["arm", "model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"


@admin.register(EstimatedPerformanceReport)
class EstimatedPerformanceReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "version", "arm", "method", "n_predictions",
                    "estimated"]
    list_filter = ["method", "arm", "model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"


@admin.register(SLOReport)
class SLOReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "requests", "errors", "error_rate",
                    "latency_p95_ms", "breaches"]
    list_filter = ["model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"


@admin.register(FairnessReport)
class FairnessReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "version", "n_labelled", "passed"]
    list_filter = ["passed", "model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"


@admin.register(ABEvaluation)
class ABEvaluationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # The arms by version number (the model has its column), the test's and the verdict's
    # codes free to wrap, so that the list fits a 1280 px window
    # (core/static/core/admin/lists.css).
    list_display = ["created_at", "model_name", "experiment", "champion_version",
                    "challenger_version", "metric", "test_code", "p_value", "verdict_code",
                    "action"]
    list_filter = ["verdict", "action", "model_name"]
    search_fields = ["model_name", "experiment"]
    date_hierarchy = "created_at"
    list_select_related = ["champion", "challenger"]

    @admin.display(description="Champion", ordering="champion__version")
    def champion_version(self, obj: ABEvaluation) -> str:
        return obj.champion.version

    @admin.display(description="Challenger", ordering="challenger__version")
    def challenger_version(self, obj: ABEvaluation) -> str:
        return obj.challenger.version

    @admin.display(description="Test", ordering="test")
    def test_code(self, obj: ABEvaluation) -> str:
        return list_cell_code(obj.test)

    @admin.display(description="Verdict", ordering="verdict")
    def verdict_code(self, obj: ABEvaluation) -> str:
        return list_cell_code(obj.verdict)


@admin.register(ShadowEvaluation)
class ShadowEvaluationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "champion_version", "shadow_version", "pairs",
                    "labelled", "agreement", "mean_abs_difference", "p_value", "verdict_code"]
    list_filter = ["verdict", "model_name"]
    search_fields = ["model_name"]
    date_hierarchy = "created_at"
    list_select_related = ["champion", "shadow"]

    @admin.display(description="Champion", ordering="champion__version")
    def champion_version(self, obj: ShadowEvaluation) -> str:
        return obj.champion.version

    @admin.display(description="Shadow", ordering="shadow__version")
    def shadow_version(self, obj: ShadowEvaluation) -> str:
        return obj.shadow.version

    @admin.display(description="Verdict", ordering="verdict")
    def verdict_code(self, obj: ShadowEvaluation) -> str:
        return list_cell_code(obj.verdict)


@admin.register(CanaryCheck)
class CanaryCheckAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "model_name", "experiment", "champion_version", "version",
                    "bake_until", "decision_code", "breach_codes"]
    list_filter = ["decision", "model_name"]
    search_fields = ["model_name", "experiment", "version"]
    date_hierarchy = "created_at"
    list_select_related = ["champion"]

    @admin.display(description="Champion", ordering="champion__version")
    def champion_version(self, obj: CanaryCheck) -> str:
        return obj.champion.version

    @admin.display(description="Decision", ordering="decision")
    def decision_code(self, obj: CanaryCheck) -> str:
        return list_cell_code(obj.decision)

    @admin.display(description="Breaches")
    def breach_codes(self, obj: CanaryCheck) -> str:
        return list_cell_code(", ".join(obj.breaches) or "none")


# --- schedules: django-celery-beat's admin, with every change by a person audited ---------


class AuditedScheduleAdminMixin:
    """Adds, changes and deletes go through monitoring.schedules' services, which record each
    as a sealed ScheduleChange row (docs/monitoring.md#schedules)."""

    def save_model(self, request, obj, form, change):
        schedules.schedule_save(instance=obj, user=request.user)

    def delete_model(self, request, obj):
        schedules.schedule_delete(instance=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            schedules.schedule_delete(instance=obj, user=request.user)


class PeriodicTaskAdmin(AuditedScheduleAdminMixin, beat_admin.PeriodicTaskAdmin):
    """Beat's list actions are offered to anyone who may view the list; here enabling,
    disabling, toggling and running tasks need the change permission (Deployers), and the
    first three are audited like the change form."""

    def _enabled_set(self, request, queryset, enabled: bool | None, done: str) -> None:
        rows = schedules.periodic_tasks_enabled_set(tasks=queryset, user=request.user,
                                                    enabled=enabled)
        self.message_user(request, f"{len(rows)} task(s) {done}.", messages.SUCCESS)

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        self._enabled_set(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        self._enabled_set(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        self._enabled_set(request, queryset, None, "toggled")

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset):
        try:
            sent = schedules.periodic_tasks_run(tasks=list(queryset.order_by("name")),
                                                user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{len(sent)} task(s) sent to the workers.", messages.SUCCESS)


class IntervalScheduleAdmin(AuditedScheduleAdminMixin, beat_admin.IntervalScheduleAdmin):
    """Beat's interval schedules, each change by a person audited."""


class CrontabScheduleAdmin(AuditedScheduleAdminMixin, beat_admin.CrontabScheduleAdmin):
    """Beat's crontab schedules, each change by a person audited."""


class SolarScheduleAdmin(AuditedScheduleAdminMixin, beat_admin.SolarScheduleAdmin):
    """Beat's solar schedules, each change by a person audited."""


class ClockedScheduleAdmin(AuditedScheduleAdminMixin, beat_admin.ClockedScheduleAdmin):
    """Beat's clocked schedules, each change by a person audited."""


for beat_model, audited_admin in ((PeriodicTask, PeriodicTaskAdmin),
                                  (IntervalSchedule, IntervalScheduleAdmin),
                                  (CrontabSchedule, CrontabScheduleAdmin),
                                  (SolarSchedule, SolarScheduleAdmin),
                                  (ClockedSchedule, ClockedScheduleAdmin)):
    admin.site.unregister(beat_model)
    admin.site.register(beat_model, audited_admin)


@admin.register(ScheduleChange)
class ScheduleChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The schedule changes' audit chain, read-only; the list says whether it verifies."""

    list_display = ["sequence", "changed", "action", "object_type", "object_repr", "changes"]
    list_filter = ["action", "object_type"]
    list_select_related = ["actor"]
    readonly_fields = [field.name for field in ScheduleChange._meta.fields]

    @admin.display(description="Changed", ordering="created_at")
    def changed(self, obj: ScheduleChange) -> str:
        # Who and when in one cell, so that the list fits a 1280 px window.
        return list_cell_who_when(obj.actor, obj.created_at)

    def changelist_view(self, request, extra_context=None):
        broken = schedules.schedule_changes_verify()
        if broken is None:
            self.message_user(request, "The schedule changes' audit chain verifies.",
                              messages.SUCCESS)
        else:
            self.message_user(request, f"The schedule changes' audit chain breaks at row "
                                       f"#{broken.sequence}.", messages.ERROR)
        return super().changelist_view(request, extra_context)
