import json

from django.core.serializers.json import DjangoJSONEncoder
from django_celery_beat.models import PeriodicTask

from core.commands import ApplicationCommand
from monitoring import schedules

# subcommand -> (what periodic_tasks_enabled_set sets, the word printed)
ENABLED = {"enable": (True, "enabled"), "disable": (False, "disabled"),
           "toggle": (None, "toggled")}


class Command(ApplicationCommand):
    help = ("List the periodic tasks, or enable, disable, toggle or run some, as the Periodic "
            "tasks admin does (each change is sealed in the schedule changes' chain): "
            "`schedules list [--json]`, `schedules enable|disable|toggle|run NAME... --user U`.")

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True,
                                            metavar="{list,enable,disable,toggle,run}",
                                            help="what to do (each has its own --help)")
        listing = subcommands.add_parser("list", help="every periodic task and its schedule")
        listing.add_argument("--json", dest="as_json", action="store_true",
                             help="print a JSON array, one object per task")
        for name, does in (("enable", "let beat run the tasks again"),
                           ("disable", "stop beat from running the tasks"),
                           ("toggle", "enable the disabled tasks and disable the enabled"),
                           ("run", "send the tasks to the workers now, once")):
            change = subcommands.add_parser(name, help=does)
            change.add_argument("names", nargs="+", metavar="NAME",
                                help='a periodic task\'s name, e.g. "monitoring: drift check"')
            change.add_argument("--user", required=True, help="username of a Deployer")

    def run(self, *args, subcommand, **options):
        if subcommand == "list":
            self.tasks_list(as_json=options["as_json"])
            return
        tasks = schedules.periodic_tasks_get(names=options["names"])
        user = self.user(options["user"])
        if subcommand == "run":
            ids = schedules.periodic_tasks_run(tasks=tasks, user=user)
            for task, task_id in zip(tasks, ids, strict=True):
                self.stdout.write(f"sent {task.name} ({task.task}, id {task_id})")
            return
        enabled, done = ENABLED[subcommand]
        rows = schedules.periodic_tasks_enabled_set(
            tasks=PeriodicTask.objects.filter(pk__in=[task.pk for task in tasks]), user=user,
            enabled=enabled)
        self.stdout.write(f"{len(rows)} task(s) {done} by {user}"
                          + ("" if rows else " (nothing to change)"))

    def tasks_list(self, *, as_json: bool) -> None:
        tasks = [{"name": task.name, "task": task.task, "enabled": task.enabled,
                  "schedule": str(task.interval or task.crontab or task.solar or task.clocked),
                  "last_run_at": task.last_run_at}
                 for task in PeriodicTask.objects.order_by("name")
                 .select_related("interval", "crontab", "solar", "clocked")]
        if as_json:
            self.stdout.write(json.dumps(tasks, cls=DjangoJSONEncoder, indent=2))
            return
        for task in tasks:
            state = "enabled" if task["enabled"] else "disabled"
            self.stdout.write(f"{task['name']}: {task['task']}, {task['schedule']}, {state}")
