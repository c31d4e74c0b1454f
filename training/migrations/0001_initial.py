"""Training takes over the tables mlregistry created for it (mlregistry/0009).

State only for the tables: they keep their names (`db_table`), rows, constraints and
indexes. The two content types move from `mlregistry` to `training`, so the permissions
attached to them (Data scientists add datasets and jobs, everyone views them) stay granted.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ["trainingdataset", "trainingjob"]


def content_types_move(apps, *, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    taken = set(content_type.objects.filter(app_label=target, model__in=MODELS)
                .values_list("model", flat=True))
    content_type.objects.filter(app_label=source, model__in=set(MODELS) - taken).update(
        app_label=target)


def to_training(apps, schema_editor):
    content_types_move(apps, source="mlregistry", target="training")


def to_mlregistry(apps, schema_editor):
    content_types_move(apps, source="training", target="mlregistry")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("mlregistry", "0009_training_tables_to_the_training_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TrainingDataset",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("model_name", models.SlugField(
                            help_text="The recipe or global model it trains.", max_length=100)),
                        ("sha256", models.CharField(max_length=64)),
                        ("storage_path", models.CharField(max_length=255)),
                        ("format", models.CharField(max_length=16)),
                        ("original_name", models.CharField(max_length=255)),
                        ("rows", models.PositiveIntegerField()),
                        ("columns", models.JSONField(default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("uploaded_by", models.ForeignKey(
                            on_delete=django.db.models.deletion.PROTECT,
                            to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "mlregistry_trainingdataset",
                        "ordering": ["model_name", "-created_at"],
                        "constraints": [models.UniqueConstraint(
                            fields=("model_name", "sha256"), name="unique_dataset_content")],
                    },
                ),
                migrations.CreateModel(
                    name="TrainingJob",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("recipe", models.SlugField(max_length=100)),
                        ("client_id", models.CharField(blank=True, default="", max_length=100)),
                        ("reason", models.CharField(blank=True, max_length=200)),
                        ("state", models.CharField(
                            choices=[("queued", "Queued"), ("running", "Running"),
                                     ("succeeded", "Succeeded"), ("failed", "Failed")],
                            default="queued", max_length=16)),
                        ("progress", models.PositiveSmallIntegerField(default=0)),
                        ("stage", models.CharField(blank=True, max_length=100)),
                        ("error", models.TextField(blank=True)),
                        ("include_feedback", models.BooleanField(default=False)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("artifact_paths", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("dataset", models.ForeignKey(
                            blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                            to="training.trainingdataset")),
                        ("requested_by", models.ForeignKey(
                            on_delete=django.db.models.deletion.PROTECT,
                            to=settings.AUTH_USER_MODEL)),
                        ("version", models.ForeignKey(
                            blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                            to="mlregistry.mlmodelversion")),
                    ],
                    options={
                        "db_table": "mlregistry_trainingjob",
                        "ordering": ["-created_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("state__in", ["queued", "running"])),
                                fields=("recipe", "client_id"),
                                name="one_active_training_per_model"),
                            models.CheckConstraint(condition=models.Q(("progress__lte", 100)),
                                                   name="progress_at_most_100"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(to_training, to_mlregistry),
    ]
