from django.db import migrations, models

import predictions.models

# Keys made before scopes could do everything; they keep every scope.
SCOPES_BEFORE = ["predict", "explain", "feedback", "read"]


def existing_keys_keep_every_scope(apps, schema_editor):
    apps.get_model("predictions", "ClientAPIKey").objects.update(scopes=SCOPES_BEFORE)


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0003_prediction_failure"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientapikey",
            name="scopes",
            field=models.JSONField(
                default=predictions.models.default_scopes,
                help_text="What the key may call: predict, explain, feedback, read.",
            ),
        ),
        migrations.RunPython(existing_keys_keep_every_scope, migrations.RunPython.noop),
    ]
