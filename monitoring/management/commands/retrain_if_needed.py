from core.commands import ApplicationCommand
from monitoring.retraining import retraining_check


class Command(ApplicationCommand):
    help = ("Check the retraining triggers of every model with a production version (or of "
            "one), print them, and queue a retrain where one fires; --dry-run queues nothing.")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one model (default: all)")
        parser.add_argument("--model", dest="model", help="one model (same as NAME)")
        parser.add_argument("--dry-run", action="store_true", help="print, queue nothing")

    def run(self, *args, name, model, dry_run, **options):
        checks = retraining_check(model_name=name or model, dry_run=dry_run)
        if not checks:
            self.stdout.write("no model with a production version to check")
        for check in checks:
            self.stdout.write(f"{check.model_name}: "
                              + ("; ".join(check.triggers) or "no trigger fired"))
            if check.job is not None:
                self.stdout.write(f"  queued training job #{check.job.pk}")
            elif dry_run and not check.skipped:
                self.stdout.write("  would queue a retrain (dry run)")
            elif check.skipped and check.triggers:
                self.stdout.write(f"  not retrained: {check.skipped}")
