from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = "Restore the previous production version (or --to VERSION) in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("--to", dest="to_version", metavar="VERSION",
                            help="the version to restore (default: the previous "
                                 "production version)")
        parser.add_argument("--user", required=True, help="username of the deployer")
        parser.add_argument("--reason", required=True,
                            help="why; kept in the audit trail")
        parser.add_argument("--dry-run", action="store_true",
                            help="print what would happen and change nothing")

    def run(self, *args, name, to_version, user, reason, dry_run, **options):
        plan = services.model_rollback(
            model=selectors.model_get(name=name), user=self.user(user), reason=reason,
            to_version=to_version, dry_run=dry_run,
        )
        ended = f"; ends tests of {', '.join(plan.ended_tests)}" if plan.ended_tests else ""
        verb = "would roll back" if dry_run else "rolled back"
        self.stdout.write(
            f"{verb} {plan.model} from {plan.from_version or 'no production version'} "
            f"to {plan.to_version}{ended}"
        )
