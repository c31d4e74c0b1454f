from core.commands import ApplicationCommand
from mlregistry import selectors
from monitoring import shadow as shadow_tests


class Command(ApplicationCommand):
    help = ("Deploy a model's running shadow as champion when its latest shadow evaluation "
            "says it is better (shadow_better); refused otherwise.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("--user", required=True, help="username of the deployer")
        parser.add_argument("--shadow", metavar="VERSION",
                            help="the shadow's version, when the model has several")

    def run(self, *args, name, user, shadow, **options):
        candidate = selectors.model_version_get(name=name, version=shadow) if shadow else None
        winner = shadow_tests.shadow_promote(model_name=name, user=self.user(user),
                                             shadow=candidate)
        self.stdout.write(f"{winner} won its shadow test: champion with "
                          f"{winner.traffic_percentage}% of traffic")
