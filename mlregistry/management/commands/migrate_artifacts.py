from core.commands import ApplicationCommand
from mlregistry import registration


class Command(ApplicationCommand):
    help = ("Convert the pickled estimators of versions registered before safe model files "
            "to skops, each checked to answer exactly as its pickle; one audit row per "
            "version converted.")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="only this model's versions")
        parser.add_argument("--dry-run", action="store_true",
                            help="convert and compare, store and change nothing")

    def run(self, *args, name, dry_run, **options):
        versions = registration.versions_holding_pickles(name=name)
        verb = "would convert" if dry_run else "converted"
        for version in versions:
            migration = registration.artifact_migrate(version=version, dry_run=dry_run)
            carried = (f"; trusted with its approval: {', '.join(migration.carried_types)}"
                       if migration.carried_types else "")
            self.stdout.write(f"{verb} {migration.version}: identical answers on "
                              f"{migration.rows_compared} rows{carried}")
        self.stdout.write(f"{verb} {len(versions)} version(s)")
