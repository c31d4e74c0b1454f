from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Archive a version: it can no longer be approved or deployed (an archived former "
            "champion can still come back through rollback).")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--user", required=True)
        parser.add_argument("--reason", required=True)

    def run(self, *args, name, version, user, reason, **options):
        archived = services.model_version_archive(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), reason=reason,
        )
        self.stdout.write(f"{archived} archived by {user}")
