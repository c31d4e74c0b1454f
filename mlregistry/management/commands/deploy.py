from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Deploy an approved version: as champion with 100% of traffic, as a challenger "
            "with --traffic P, or as a shadow with --shadow.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="an approved (staging) version, e.g. 1.1.0")
        parser.add_argument("--user", required=True, help="username of the deployer")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--traffic", type=int, help="challenger share in percent (1-99)")
        mode.add_argument("--shadow", action="store_true",
                          help="answer every request in the background, unseen by "
                               "clients, beside the champion")
        parser.add_argument("--notes", default="", help="kept in the audit trail")

    def run(self, *args, name, version, user, traffic, shadow, notes, **options):
        deployed = services.model_version_deploy(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), traffic=traffic, shadow=shadow, notes=notes,
        )
        role = "shadow" if deployed.is_shadow else (
            "champion" if deployed.status == "production" else "challenger")
        self.stdout.write(
            f"{deployed} deployed as {role} with {deployed.traffic_percentage}% of traffic")
