"""A model's identity is fixed at registration.

Names are validated (MODEL_NAME_PATTERN); Data scientists no longer hold add_mlmodel and
change_mlmodel: models come into being by registering a version, and nobody re-tenants or
re-tasks one in the admin.
"""

import django.core.validators
from django.db import migrations, models

WITHDRAWN = ["add_mlmodel", "change_mlmodel"]


def withdraw(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="Data scientists").first()
    if group is not None:
        group.permissions.remove(*apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="mlregistry", codename__in=WITHDRAWN))


def grant_back(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="Data scientists").first()
    if group is not None:
        group.permissions.add(*apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="mlregistry", codename__in=WITHDRAWN))


class Migration(migrations.Migration):

    dependencies = [
        ("mlregistry", "0009_training_tables_to_the_training_app"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mlmodel",
            name="name",
            field=models.SlugField(max_length=100, unique=True, validators=[
                django.core.validators.RegexValidator(
                    "^[a-z0-9][a-z0-9-]{0,62}$",
                    message="a model name is lowercase letters, digits and hyphens, starting "
                            "with a letter or digit, at most 63 characters")]),
        ),
        migrations.RunPython(withdraw, grant_back),
    ]
