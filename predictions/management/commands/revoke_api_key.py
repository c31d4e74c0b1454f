from django.conf import settings

from core.commands import ApplicationCommand
from predictions import services


class Command(ApplicationCommand):
    help = ("Revoke a REST client's API key, named by its prefix (the part before the dot) or "
            "by its name (every active key of that name); it can never be used again.")

    def add_arguments(self, parser):
        parser.add_argument("key", metavar="NAME|PREFIX",
                            help="the key's prefix, e.g. AbCd1234, or the name it was created "
                                 "with, e.g. crm-sync")

    def run(self, *args, key, **options):
        for revoked in services.api_key_revoke(name_or_prefix=key):
            self.stdout.write(f"revoked {revoked.name} (prefix {revoked.prefix})")
        self.stdout.write(f"every server refuses it within {settings.API_KEY_CACHE_SECONDS:g} s "
                          "(API_KEY_CACHE_SECONDS)")
