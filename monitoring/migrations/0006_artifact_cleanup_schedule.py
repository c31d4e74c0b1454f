"""Install the daily "registry: artifact clean-up" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedule_install_operation


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0005_group_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedule_install_operation("registry: artifact clean-up")]
