"""Install the periodic tasks of monitoring/schedules.py as django-celery-beat rows."""

from django.db import migrations

from monitoring.schedules import SCHEDULES, schedules_install


def install(apps, schema_editor):
    schedules_install(periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
                      interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"))


def uninstall(apps, schema_editor):
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    periodic_task.objects.filter(name__in=[schedule.name for schedule in SCHEDULES]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0002_reports_and_alert_delivery"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
