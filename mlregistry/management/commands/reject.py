from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = "Reject a candidate: it is archived with the reviewer's notes."

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")
        parser.add_argument("--user", required=True,
                            help="username of the rejecting reviewer")
        parser.add_argument("--notes", required=True,
                            help="why it is rejected; kept in the audit trail")

    def run(self, *args, name, version, user, notes, **options):
        rejected = services.model_version_reject(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=notes,
        )
        self.stdout.write(f"{rejected} rejected by {user}: {rejected.status}")
