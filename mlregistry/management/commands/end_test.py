from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("End the A/B or shadow test of a version: its traffic returns to the champion; "
            "it stays approved (staging).")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--user", required=True)
        parser.add_argument("--notes", default="")

    def run(self, *args, name, version, user, notes, **options):
        ended = services.model_version_end_test(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=notes,
        )
        self.stdout.write(f"test of {ended} ended by {user}: {ended.status}, no traffic")
