"""Data scientists may register datasets and queue training jobs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

DATA_SCIENTIST_EXTRA = ["add_trainingdataset", "view_trainingdataset", "add_trainingjob",
                        "view_trainingjob"]
VIEW_FOR_ALL = ["view_trainingdataset", "view_trainingjob"]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def permissions(codenames):
        return Permission.objects.filter(content_type__app_label="mlregistry", codename__in=codenames)

    Group.objects.get(name="Data scientists").permissions.add(*permissions(DATA_SCIENTIST_EXTRA))
    for name in ("Reviewers", "Deployers"):
        Group.objects.get(name=name).permissions.add(*permissions(VIEW_FOR_ALL))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    extra = Permission.objects.filter(content_type__app_label="mlregistry",
                                      codename__in=DATA_SCIENTIST_EXTRA)
    for group in Group.objects.filter(name__in=["Data scientists", "Reviewers", "Deployers"]):
        group.permissions.remove(*extra)


class Migration(migrations.Migration):
    dependencies = [("mlregistry", "0004_training")]

    operations = [migrations.RunPython(grant, revoke)]
