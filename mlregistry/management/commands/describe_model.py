from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Change what a model is for (its description): one sealed audit row about the "
            "model. Its name, task, client and global model never change.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("--user", required=True, help="username of the person acting")
        parser.add_argument("--description", required=True,
                            help="the new description (replaces the old one)")

    def run(self, *args, name, user, description, **options):
        model = services.model_describe(model=selectors.model_get(name=name),
                                        user=self.user(user), description=description)
        self.stdout.write(f"{model.name} described by {user}")
