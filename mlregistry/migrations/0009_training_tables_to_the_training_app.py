"""TrainingDataset and TrainingJob now belong to the training app (training/0001).

State only: the tables keep their names and their rows; training/0001 takes over the same
tables and their content types (so group permissions stay granted).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("mlregistry", "0008_version_global_importance"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="trainingjob", name="dataset"),
                migrations.RemoveField(model_name="trainingjob", name="requested_by"),
                migrations.RemoveField(model_name="trainingjob", name="version"),
                migrations.DeleteModel(name="TrainingDataset"),
                migrations.DeleteModel(name="TrainingJob"),
            ],
            database_operations=[],
        ),
    ]
