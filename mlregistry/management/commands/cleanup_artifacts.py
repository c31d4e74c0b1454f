from core.commands import ApplicationCommand
from mlregistry import registration


class Command(ApplicationCommand):
    help = ("Delete the artifact files no kept version needs (kept: every version not "
            "archived and the ARTIFACT_KEEP_PRIOR_PRODUCTION latest former champions of each "
            "model); one audit row per version cleaned. Runs daily from beat.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="list what would be deleted; delete nothing")

    def run(self, *args, dry_run, **options):
        plan = registration.artifact_cleanup(dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for label in plan.versions:
            self.stdout.write(f"{verb} the artifacts of {label}")
        for path in sorted(plan.paths):
            self.stdout.write(f"{verb} {path}")
        self.stdout.write(f"{verb} {len(plan.paths)} file(s) of {len(plan.versions)} version(s)")
