from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("End the A/B or shadow test of a version: its traffic returns to the champion; "
            "it stays approved (staging).")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="the challenger or shadow version, e.g. 1.1.0")
        parser.add_argument("--user", required=True, help="username of the deployer")
        parser.add_argument("--notes", default="", help="kept in the audit trail")

    def run(self, *args, name, version, user, notes, **options):
        ended = services.model_version_end_test(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=notes,
        )
        self.stdout.write(f"test of {ended} ended by {user}: {ended.status}, no traffic")
