"""Every step an operator can take in the admin can be taken with `manage.py` too
(docs/operations.md): each admin action, and each page of its own that an admin adds (the
version admin's registry actions, monitoring's "promote winner" among them), is mapped here
to the command that calls the same service. A new action without its command fails
`test_every_admin_action_has_a_command` until it gets one (or a reason to be admin-only)."""

from django.contrib import admin
from django.core.management import get_commands, load_command_class

# (model, action) -> the command, then the subcommand or option that takes that step.
ACTION_COMMANDS = {
    # The version admin's pages (mlregistry.admin_actions.ACTIONS)
    ("mlregistry.MLModelVersion", "trust-types"): ("trust_types",),
    ("mlregistry.MLModelVersion", "approve"): ("approve",),
    ("mlregistry.MLModelVersion", "reject"): ("reject",),
    ("mlregistry.MLModelVersion", "deploy"): ("deploy",),
    ("mlregistry.MLModelVersion", "ab-test"): ("deploy", "--traffic"),
    ("mlregistry.MLModelVersion", "shadow-test"): ("deploy", "--shadow"),
    ("mlregistry.MLModelVersion", "canary"): ("deploy", "--canary"),
    ("mlregistry.MLModelVersion", "end-test"): ("end_test",),
    ("mlregistry.MLModelVersion", "promote-winner"): ("promote_winner",),
    ("mlregistry.MLModelVersion", "promote-shadow"): ("promote_shadow",),
    ("mlregistry.MLModelVersion", "rollback"): ("rollback",),
    ("mlregistry.MLModelVersion", "withdraw"): ("withdraw",),
    ("mlregistry.MLModelVersion", "archive"): ("archive",),
    ("mlregistry.MLModelVersion", "cleanup"): ("cleanup_artifacts",),
    ("mlregistry.MLModel", "describe"): ("describe_model",),
    # The Alerts list's actions
    ("monitoring.Alert", "acknowledge"): ("alerts", "ack"),
    ("monitoring.Alert", "resolve"): ("alerts", "resolve"),
    # The Periodic tasks list's actions (each change sealed in the schedule changes' chain)
    ("django_celery_beat.PeriodicTask", "enable_tasks"): ("schedules", "enable"),
    ("django_celery_beat.PeriodicTask", "disable_tasks"): ("schedules", "disable"),
    ("django_celery_beat.PeriodicTask", "toggle_tasks"): ("schedules", "toggle"),
    ("django_celery_beat.PeriodicTask", "run_tasks"): ("schedules", "run"),
    # Admin login: a password, a TOTP device's set-up (its otpauth:// URI)
    ("auth.User", "password_change"): ("changepassword",),
    ("otp_totp.TOTPDevice", "config"): ("add_totp_device",),
    ("otp_totp.TOTPDevice", "qrcode"): ("add_totp_device",),
}

# Admin actions with no command of their own, and why.
ADMIN_ONLY = {
    ("axes.AccessAttempt", "cleanup_expired_attempts"):
        "django-axes deletes expired attempts itself at every login; the axes_reset_* "
        "commands unlock (docs/operations.md#admin-login)",
}
# Django's site-wide action, offered only where a user may delete rows: not a platform step.
DJANGO_DELETE = "delete_selected"
# The admin's own pages of every model; anything else get_urls() adds is an action's page.
STANDARD_PAGES = {"changelist", "add", "history", "delete", "change", "autocomplete"}


def admin_actions() -> set[tuple[str, str]]:
    """(model label, action) for every list action and every extra page of every
    registered ModelAdmin."""
    found = set()
    for model, model_admin in admin.site._registry.items():
        label, prefix = model._meta.label, f"{model._meta.app_label}_{model._meta.model_name}_"
        found |= {(label, name) for _, name, _ in model_admin._get_base_actions()
                  if name != DJANGO_DELETE}
        found |= {(label, pattern.name.removeprefix(prefix))
                  for pattern in model_admin.get_urls()
                  if pattern.name and pattern.name.removeprefix(prefix) not in STANDARD_PAGES}
    return found


def test_every_admin_action_has_a_command():
    unmapped = sorted(admin_actions() - set(ACTION_COMMANDS) - set(ADMIN_ONLY))

    assert unmapped == [], "admin actions without a management command (add one, then map it)"


def test_every_mapped_command_takes_its_step():
    commands = get_commands()
    for action, (command, *step) in ACTION_COMMANDS.items():
        assert command in commands, f"{action}: no command {command!r}"
        usage = load_command_class(commands[command], command).create_parser(
            "manage.py", command).format_help()
        for word in step:
            assert word in usage, f"{action}: {command} has no {word}"


def test_mapping_names_only_actions_the_admin_has():
    assert sorted(set(ACTION_COMMANDS) | set(ADMIN_ONLY)) == sorted(admin_actions())
