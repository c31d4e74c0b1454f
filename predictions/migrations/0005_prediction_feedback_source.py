"""Who posted each outcome (docs/monitoring.md#independent-evidence). Outcomes posted
before it was recorded are attributed to the prediction's client, or, without one, to a
single source `key:unknown`: together they count as one client, never as many."""

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Concat


def attribute_earlier_feedback(apps, schema_editor):
    log = apps.get_model("predictions", "PredictionLog").objects.filter(actual_at__isnull=False)
    log.exclude(client_id="").update(feedback_source=Concat(Value("client:"), "client_id"))
    log.filter(client_id="").update(feedback_source="key:unknown")


class Migration(migrations.Migration):

    dependencies = [
        ("predictions", "0004_api_key_scopes"),
    ]

    operations = [
        migrations.AddField(
            model_name="predictionlog",
            name="feedback_source",
            field=models.CharField(blank=True, db_default="", default="", max_length=120),
        ),
        migrations.RunPython(attribute_earlier_feedback, migrations.RunPython.noop),
    ]
