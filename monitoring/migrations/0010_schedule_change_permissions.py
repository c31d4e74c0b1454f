"""Only Deployers change the schedules (docs/monitoring.md#schedules): Reviewers and Data
scientists hold no add, change or delete permission on django-celery-beat's rows, whatever
an earlier release or an operator granted them; every group may read the schedule changes'
audit trail (monitoring 0009)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

BEAT_MODELS = ["periodictask", "intervalschedule", "crontabschedule", "solarschedule",
               "clockedschedule"]
SCHEDULE_WRITES = [f"{verb}_{model}" for model in BEAT_MODELS
                   for verb in ("add", "change", "delete")]
NOT_SCHEDULE_WRITERS = ["Data scientists", "Reviewers"]
VIEW_FOR_ALL = ["view_schedulechange"]
GROUPS = ["Data scientists", "Reviewers", "Deployers"]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    writes = Permission.objects.filter(content_type__app_label="django_celery_beat",
                                       codename__in=SCHEDULE_WRITES)
    for group in Group.objects.filter(name__in=NOT_SCHEDULE_WRITERS):
        group.permissions.remove(*writes)
    view = Permission.objects.filter(content_type__app_label="monitoring",
                                     codename__in=VIEW_FOR_ALL)
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(*view)


def revoke(apps, schema_editor):
    # What was removed from Reviewers and Data scientists was never theirs to have.
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label="monitoring",
                                     codename__in=VIEW_FOR_ALL)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.remove(*view)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0009_schedule_changes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
