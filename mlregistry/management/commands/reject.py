from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = "Reject a candidate: it is archived with the reviewer's notes."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--user", required=True)
        parser.add_argument("--notes", required=True)

    def run(self, *args, name, version, user, notes, **options):
        rejected = services.model_version_reject(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=notes,
        )
        self.stdout.write(f"{rejected} rejected by {user}: {rejected.status}")
