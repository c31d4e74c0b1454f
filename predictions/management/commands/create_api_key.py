from core.commands import ApplicationCommand
from predictions import services
from predictions.models import DEFAULT_SCOPES, SCOPES


class Command(ApplicationCommand):
    help = "Create an API key for a REST client; prints the key alone (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for")
        parser.add_argument("--client", default="",
                            help="bind the key to one client: it may only act for that client")
        parser.add_argument("--scope", dest="scopes", action="append", choices=SCOPES,
                            help="what the key may call (repeat for several); default: "
                                 f"{', '.join(DEFAULT_SCOPES)}")

    def run(self, *args, name, client, scopes, **options):
        _, key = services.api_key_create(name=name, client_id=client, scopes=scopes)
        self.stdout.write(key)
