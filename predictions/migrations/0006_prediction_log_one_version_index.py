"""The prediction log's own index on model_version goes: (model_version, created_at) serves
every lookup by version, and each index costs every logged row an insert.

Only the index is dropped (PostgreSQL and SQLite name it alike); a plain AlterField would
drop and re-add the foreign key, which re-checks every logged row, or rebuild the table on
SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "predictions_predictionlog_model_version_id_40ee0503"


class Migration(migrations.Migration):

    dependencies = [
        ("mlregistry", "0011_keyed_audit_chain"),
        ("predictions", "0005_prediction_feedback_source"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="predictionlog",
                    name="model_version",
                    field=models.ForeignKey(db_index=False,
                                            on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="mlregistry.mlmodelversion"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    reverse_sql=(f"CREATE INDEX {INDEX} ON predictions_predictionlog "
                                 "(model_version_id)"),
                ),
            ],
        ),
    ]
