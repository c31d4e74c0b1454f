from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Deploy an approved version: as champion with 100% of traffic, as a challenger "
            "with --traffic P, or as a shadow with --shadow.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--user", required=True)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--traffic", type=int, help="challenger share in percent (1-99)")
        mode.add_argument("--shadow", action="store_true")
        parser.add_argument("--notes", default="")

    def run(self, *args, name, version, user, traffic, shadow, notes, **options):
        deployed = services.model_version_deploy(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), traffic=traffic, shadow=shadow, notes=notes,
        )
        role = "shadow" if deployed.is_shadow else (
            "champion" if deployed.status == "production" else "challenger")
        self.stdout.write(
            f"{deployed} deployed as {role} with {deployed.traffic_percentage}% of traffic")
