from django.core.management.base import CommandError

from mlregistry import selectors
from pulselytics.commands import ApplicationCommand


class Command(ApplicationCommand):
    help = "Walk each model's hash-chained audit trail and name the first broken row."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?")

    def run(self, *args, name, **options):
        broken = []
        for model in selectors.models_for(name):
            result = selectors.audit_verify_model(model=model)
            if result.ok:
                self.stdout.write(f"{result.model}: OK ({result.rows} rows)")
            else:
                self.stdout.write(f"{result.model}: BROKEN at row id={result.broken_row_id} "
                                  f"(sequence {result.broken_sequence}): {result.problem}")
                broken.append(result)
        if broken:
            first = broken[0]
            raise CommandError(
                f"audit trail of {first.model} broken at row id={first.broken_row_id} "
                f"(sequence {first.broken_sequence}): {first.problem}"
            )
