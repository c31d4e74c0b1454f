"""Install the daily "registry: audit anchor" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedule_install_operation


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0006_artifact_cleanup_schedule"),
    ]

    operations = [schedule_install_operation("registry: audit anchor")]
