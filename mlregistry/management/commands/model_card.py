import json

from django.core.serializers.json import DjangoJSONEncoder

from core.commands import ApplicationCommand
from mlregistry import selectors
from mlregistry.model_card import model_card_build, model_card_markdown


class Command(ApplicationCommand):
    help = ("Print the model card of NAME VERSION as Markdown: purpose, data and its hash, "
            "metrics against production, fairness table, gates, approvals, environment.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help="print the card's data as JSON instead of Markdown")

    def run(self, *args, name, version, as_json, **options):
        card = model_card_build(version=selectors.model_version_get(name=name, version=version))
        if as_json:
            self.stdout.write(json.dumps(card, cls=DjangoJSONEncoder, indent=2))
        else:
            self.stdout.write(model_card_markdown(card))
