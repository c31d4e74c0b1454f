from core.commands import ApplicationCommand
from mlregistry import selectors
from mlregistry.model_card import model_card_build, model_card_markdown


class Command(ApplicationCommand):
    help = ("Print the model card of NAME VERSION as Markdown: purpose, data and its hash, "
            "metrics against production, fairness table, gates, approvals, environment.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")

    def run(self, *args, name, version, **options):
        found = selectors.model_version_get(name=name, version=version)
        self.stdout.write(model_card_markdown(model_card_build(version=found)))
