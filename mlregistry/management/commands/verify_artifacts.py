from django.core.management.base import CommandError

from core.commands import ApplicationCommand
from mlregistry import selectors


class Command(ApplicationCommand):
    help = ("Check every stored version's manifest and artifact files against the registry's "
            "hashes, byte for byte (unpickles nothing).")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one model (default: all)")

    def run(self, *args, name, **options):
        failed = []
        for model in selectors.models_for(name):
            for check in selectors.artifacts_verify_model(model=model):
                if check.ok:
                    self.stdout.write(f"OK {model.name} {check.version.version}")
                else:
                    self.stdout.write(f"FAILED {model.name} {check.version.version}: {check.error}")
                    failed.append((model.name, check))
        if failed:
            model_name, first = failed[0]
            raise CommandError(
                f"{len(failed)} version(s) failed verification; first: {model_name} "
                f"{first.version.version}: {first.error}"
            )
