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
        mode.add_argument("--canary", type=int, metavar="PERCENT",
                          help="canary share in percent (1-99): promoted to champion after "
                               "--bake-minutes if healthy, rolled back on a breach")
        parser.add_argument("--bake-minutes", type=int, metavar="M",
                            help="with --canary: how long it must stay healthy")
        parser.add_argument("--experiment", default="",
                            help="with --traffic or --canary: the test's name in evaluations, "
                                 "the dashboard and alerts")
        parser.add_argument("--notes", default="", help="kept in the audit trail")

    def run(self, *args, name, version, user, traffic, shadow, canary, bake_minutes,
            experiment, notes, **options):
        deployed = services.model_version_deploy(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), traffic=traffic, shadow=shadow, canary=canary,
            bake_minutes=bake_minutes, experiment=experiment, notes=notes,
        )
        role = "shadow" if deployed.is_shadow else (
            "champion" if deployed.status == "production" else
            "canary" if deployed.canary_until else "challenger")
        line = f"{deployed} deployed as {role} with {deployed.traffic_percentage}% of traffic"
        if deployed.canary_until:
            line += f", promoted at {deployed.canary_until:%Y-%m-%d %H:%M} UTC if healthy"
        if deployed.experiment:
            line += f" (experiment {deployed.experiment})"
        self.stdout.write(line)
