"""Install the daily "registry: audit anchor" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedules_install

NAME = "registry: audit anchor"


def install(apps, schema_editor):
    schedules_install(periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
                      interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"))


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0006_artifact_cleanup_schedule"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
