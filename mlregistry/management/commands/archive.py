from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Archive a version: it can no longer be approved or deployed (an archived former "
            "champion can still come back through rollback).")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")
        parser.add_argument("--user", required=True, help="username of the person acting")
        parser.add_argument("--reason", required=True,
                            help="why; kept in the audit trail")

    def run(self, *args, name, version, user, reason, **options):
        archived = services.model_version_archive(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), reason=reason,
        )
        self.stdout.write(f"{archived} archived by {user}")
