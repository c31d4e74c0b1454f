from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = "Restore the previous production version (or --to VERSION) in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--to", dest="to_version")
        parser.add_argument("--user", required=True)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--dry-run", action="store_true")

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
