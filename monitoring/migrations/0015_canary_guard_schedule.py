"""Install the "canary guard" periodic task (monitoring/schedules.py)."""

from django.db import migrations

from monitoring.schedules import schedule_install_operation


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0014_canary_guard"),
    ]

    operations = [schedule_install_operation("monitoring: canary guard")]
