"""Monitoring permissions for the governance groups (mlregistry 0002): everyone may look at
reports, alerts and the schedules; reviewers and deployers, who answer alerts, may
acknowledge and resolve them (monitoring.change_alert); deployers, who run the platform,
may change the schedules (django-celery-beat's periodic tasks and intervals)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_FOR_ALL = ["view_alert", "view_alertdelivery", "view_driftreport", "view_sloreport",
                "view_performancereport", "view_fairnessreport", "view_abevaluation"]
ALERT_HANDLERS = ["change_alert"]
GROUP_PERMISSIONS = {
    "Data scientists": VIEW_FOR_ALL,
    "Reviewers": [*VIEW_FOR_ALL, *ALERT_HANDLERS],
    "Deployers": [*VIEW_FOR_ALL, *ALERT_HANDLERS],
}
SCHEDULES_VIEW = ["view_periodictask", "view_intervalschedule", "view_crontabschedule"]
SCHEDULE_PERMISSIONS = {
    "Data scientists": SCHEDULES_VIEW,
    "Reviewers": SCHEDULES_VIEW,
    "Deployers": [*SCHEDULES_VIEW, "change_periodictask", "add_intervalschedule",
                  "change_intervalschedule", "add_crontabschedule", "change_crontabschedule"],
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="monitoring",
                                                         codename__in=codenames))
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="django_celery_beat",
            codename__in=SCHEDULE_PERMISSIONS[name]))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    monitoring = Permission.objects.filter(
        content_type__app_label__in=["monitoring", "django_celery_beat"])
    for group in Group.objects.filter(name__in=GROUP_PERMISSIONS):
        group.permissions.remove(*monitoring)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0004_alert_delivery_resend_schedule"),
        ("mlregistry", "0002_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
