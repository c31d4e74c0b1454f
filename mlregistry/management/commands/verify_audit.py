from pathlib import Path

from django.core.management.base import CommandError

from core.commands import ApplicationCommand
from mlregistry import anchors, selectors


class Command(ApplicationCommand):
    help = ("Walk each model's sealed audit chain (and, without NAME, every other sealed "
            "chain, e.g. the schedule changes) and name the first broken row; with --anchor, "
            "also prove that no row up to that anchor was rewritten or removed.")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?",
                            help="model name (default: every model and every other chain)")
        parser.add_argument("--anchor", type=Path,
                            help="an anchor file written by audit_anchor (a copy kept "
                                 "outside the database)")

    def run(self, *args, name, anchor, **options):
        if anchor is not None:
            self.anchor_verify(anchor)
        results = [selectors.audit_verify_model(model=model)
                   for model in selectors.models_for(name)]
        if name is None:
            results += [chain.verify() for chain in anchors.CHAINS]
        broken = []
        for result in results:
            if result.ok:
                self.stdout.write(f"{result.model}: OK ({result.rows} rows)")
            else:
                self.stdout.write(f"{result.model}: BROKEN {self.describe(result)}")
                broken.append(result)
        if broken:
            raise CommandError(
                f"audit trail of {broken[0].model} broken {self.describe(broken[0])}")

    def anchor_verify(self, path: Path) -> None:
        try:
            document = anchors.anchor_read(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read anchor {path}: {exc.strerror}") from None
        mismatches = anchors.anchor_check(document)
        for mismatch in mismatches:
            self.stdout.write(f"{mismatch.model}: BROKEN against the anchor: {mismatch.problem}")
        if mismatches:
            raise CommandError(f"audit trail of {mismatches[0].model} differs from the anchor "
                               f"of {document['written_at']}: {mismatches[0].problem}")
        others = len(document.get("chains", {}))
        self.stdout.write(f"anchor of {document['written_at']}: every recorded chain head "
                          f"holds ({len(document['models'])} model(s)"
                          + (f", {others} other chain(s))" if others else ")"))

    @staticmethod
    def describe(result) -> str:
        where = (f"at row id={result.broken_row_id} (sequence {result.broken_sequence})"
                 if result.broken_row_id else "")
        return f"{where}: {result.problem}"
