from core.commands import ApplicationCommand
from monitoring.canary import canary_check_all


class Command(ApplicationCommand):
    help = ("Run the canary guard now for every running canary (or one model's): compared "
            "with the champion on SLO, error rate and drift, rolled back on a breach, promoted "
            "once healthy through its bake time. Prints one line per canary.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="one model (default: all)")

    def run(self, *args, model, **options):
        checks = canary_check_all(model_name=model)
        if not checks:
            self.stdout.write("no running canary")
        for check in checks:
            self.stdout.write(f"{check.model_name} {check.version}: {check.decision}: "
                              f"{check.reason}")
