"""Install the daily "registry: artifact clean-up" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedules_install

NAME = "registry: artifact clean-up"


def install(apps, schema_editor):
    schedules_install(periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
                      interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"))


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0005_group_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
