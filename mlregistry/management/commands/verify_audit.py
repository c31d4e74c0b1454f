from django.core.management.base import CommandError

from core.commands import ApplicationCommand
from mlregistry import selectors


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
                self.stdout.write(f"{result.model}: BROKEN {self.describe(result)}")
                broken.append(result)
        if broken:
            raise CommandError(
                f"audit trail of {broken[0].model} broken {self.describe(broken[0])}")

    @staticmethod
    def describe(result) -> str:
        where = (f"at row id={result.broken_row_id} (sequence {result.broken_sequence})"
                 if result.broken_row_id else "")
        return f"{where}: {result.problem}"
