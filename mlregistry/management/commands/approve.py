from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = "Approve a testing version (testing -> staging); the reviewer may not be its creator."

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")
        parser.add_argument("--user", required=True,
                            help="username of the approving reviewer (not the "
                                 "version's creator)")
        parser.add_argument("--notes", required=True,
                            help="what was reviewed; kept in the audit trail")
        parser.add_argument("--override-justification", default="",
                            help="required when a validation or fairness gate failed")

    def run(self, *args, name, version, user, notes, override_justification, **options):
        approved = services.model_version_approve(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=notes, override_justification=override_justification,
        )
        self.stdout.write(f"{approved} approved by {user}: {approved.status}")
