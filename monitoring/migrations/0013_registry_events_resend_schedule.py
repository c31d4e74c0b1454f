"""Install the "resend pending registry events" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedule_install_operation


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0012_registry_event_delivery"),
    ]

    operations = [schedule_install_operation("monitoring: resend pending registry events")]
