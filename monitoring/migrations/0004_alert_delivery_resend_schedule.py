"""Install the "resend pending alert deliveries" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedules_install

NAME = "monitoring: resend pending alert deliveries"


def install(apps, schema_editor):
    schedules_install(periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
                      interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"))


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0003_periodic_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
