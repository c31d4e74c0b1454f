from predictions import services
from pulselytics.commands import ApplicationCommand


class Command(ApplicationCommand):
    help = "Create an API key for a REST client; prints the key alone (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for")

    def run(self, *args, name, **options):
        _, key = services.api_key_create(name=name)
        self.stdout.write(key)
