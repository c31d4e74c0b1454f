from core.commands import ApplicationCommand
from monitoring.drift import drift_check_all


class Command(ApplicationCommand):
    help = ("Run the drift check of every live version (champion, challengers, shadows), or of "
            "one model's, over the last DRIFT_WINDOW_HOURS, store the reports and print one "
            "line per version.")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one model (default: all)")
        parser.add_argument("--model", dest="model", help="one model (same as NAME)")

    def run(self, *args, name, model, **options):
        reports = drift_check_all(model_name=name or model)
        if not reports:
            self.stdout.write("no live versions to check")
        for report in reports:
            drifted = [f"{feature} ({figures['severity']})"
                       for feature, figures in report.features.items() if figures["drifted"]]
            prediction = report.prediction or {}
            self.stdout.write(
                f"{report.model_name} {report.version}: {report.status}, "
                f"n_current={report.n_current}, "
                f"dataset_drift={'yes' if report.dataset_drift else 'no'}, "
                f"drifted: {', '.join(drifted) or 'none'}"
                + (f", prediction drift ({prediction['severity']})"
                   if prediction.get("drifted") else "")
            )
