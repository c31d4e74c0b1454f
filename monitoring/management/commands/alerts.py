import json

from django.core.serializers.json import DjangoJSONEncoder

from core.commands import ApplicationCommand
from monitoring import alerts, selectors
from monitoring.status import alert_data


class Command(ApplicationCommand):
    help = ("List alerts, or acknowledge or resolve one, as the Alerts admin does: "
            "`alerts list [--model NAME] [--all] [--json]`, `alerts ack ID --user U`, "
            "`alerts resolve ID --user U`.")

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True,
                                            metavar="{list,ack,resolve}",
                                            help="what to do (each has its own --help)")
        listing = subcommands.add_parser(
            "list", help="open alerts, the most severe first (with --all, then the resolved)")
        listing.add_argument("--model", help="one model's alerts (default: every model's)")
        listing.add_argument("--all", dest="include_resolved", action="store_true",
                             help="resolved alerts too, the most recently resolved first")
        listing.add_argument("--json", dest="as_json", action="store_true",
                             help="print a JSON array, one object per alert")
        for name, does in (("ack", "acknowledge an alert: someone is on it, reminders stop"),
                           ("resolve", "resolve an alert: the next occurrence opens a new one")):
            handle = subcommands.add_parser(name, help=does)
            handle.add_argument("alert_id", type=int, metavar="ID",
                                help="the alert's id, as `alerts list` prints it")
            handle.add_argument("--user", required=True,
                                help="username of a Reviewer or Deployer")

    def run(self, *args, subcommand, **options):
        if subcommand == "list":
            self.alerts_list(**options)
            return
        service = alerts.alert_acknowledge if subcommand == "ack" else alerts.alert_resolve
        alert = service(alert_id=options["alert_id"], user=self.user(options["user"]))
        done = "acknowledged" if subcommand == "ack" else "resolved"
        self.stdout.write(f"alert {alert.pk} ({alert}) {done} by {options['user']}")

    def alerts_list(self, *, model, include_resolved, as_json, **options):
        listed = selectors.alerts_list(model_name=model, include_resolved=include_resolved)
        if as_json:
            self.stdout.write(json.dumps([alert_data(alert) for alert in listed],
                                         cls=DjangoJSONEncoder, indent=2))
            return
        if not listed:
            self.stdout.write("no open alerts" if not include_resolved else "no alerts")
        for alert in listed:
            if alert.resolved_at is not None:
                state = f"resolved by {alert.resolved_by}"
            elif alert.acknowledged_at is not None:
                state = f"acknowledged by {alert.acknowledged_by}"
            else:
                state = "open"
            self.stdout.write(
                f"#{alert.pk} [{alert.severity}] {alert.kind} "
                f"{f'{alert.model_name} {alert.version}'.strip()}: {alert.message} "
                f"(x{alert.count}, last {alert.last_seen:%Y-%m-%d %H:%M:%S}; {state})")
