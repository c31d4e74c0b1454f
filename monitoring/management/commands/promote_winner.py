from core.commands import ApplicationCommand
from monitoring import ab


class Command(ApplicationCommand):
    help = ("Act on the latest A/B evaluation of a model's running test: a better challenger "
            "becomes the champion, a worse one has its test ended; refused while inconclusive "
            "or while too few clients gave the outcomes.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("--user", required=True, help="username of the deployer")

    def run(self, *args, name, user, **options):
        winner = ab.ab_promote_winner(model_name=name, user=self.user(user))
        self.stdout.write(f"{winner} won the A/B test: champion with "
                          f"{winner.traffic_percentage}% of traffic")
