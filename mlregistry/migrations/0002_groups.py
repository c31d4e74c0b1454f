"""The three governance groups (docs/registry.md#permissions-and-groups) with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = ["view_mlmodel", "view_mlmodelversion", "view_modeltransition"]
GROUPS = {
    "Data scientists": VIEW + ["add_mlmodel", "change_mlmodel", "add_mlmodelversion"],
    "Reviewers": VIEW + ["approve_mlmodelversion"],
    "Deployers": VIEW + ["deploy_mlmodelversion"],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="mlregistry", codename__in=codenames)
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mlregistry", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
