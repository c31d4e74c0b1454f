from core.commands import ApplicationCommand
from mlregistry import anchors


class Command(ApplicationCommand):
    help = ("Write today's anchor of the audit chain (every model's chain head, signed) through "
            "the artifact storage; an existing anchor is never replaced. Runs daily from beat.")

    def run(self, *args, **options):
        written = anchors.audit_anchor_write()
        if written.written:
            self.stdout.write(f"wrote {written.name} ({written.models} model(s))")
        else:
            self.stdout.write(f"{written.name} already exists: left as it was")
