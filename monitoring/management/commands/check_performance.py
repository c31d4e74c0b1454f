from core.commands import ApplicationCommand
from monitoring.estimation import ArmPerformance, live_performance_check


def _figures(metrics: dict) -> str:
    return " ".join(f"{name}={value:.4f}" if value is not None else f"{name}=n/a"
                    for name, value in metrics.items())


def _estimated(estimated: dict) -> str:
    parts = []
    for name, figure in estimated.items():
        if figure["value"] is None:
            parts.append(f"{name}=n/a")
        elif figure["lower"] is None:
            parts.append(f"{name}={figure['value']:.4f}")
        else:
            parts.append(f"{name}={figure['value']:.4f} [{figure['lower']:.4f}, "
                         f"{figure['upper']:.4f}]")
    return " ".join(parts)


def line(checked: ArmPerformance) -> str:
    realized = (f"realized {_figures(checked.realized.metrics)} "
                f"(n_labelled={checked.realized.n_labelled})" if checked.realized
                else "realized: no labelled predictions")
    if checked.estimated:
        estimated = (f"estimated {_estimated(checked.estimated.estimated)} "
                     f"({checked.estimated.method}, n={checked.estimated.n_predictions})")
    elif checked.unavailable:
        estimated = f"estimated: not available ({checked.unavailable})"
    else:
        estimated = "estimated: no predictions"
    arm = f" {checked.arm}" if checked.arm else ""
    return f"{checked.model_name} {checked.version}{arm}: {realized}; {estimated}"


class Command(ApplicationCommand):
    help = ("Run the live performance check now for every live version (or one model's): "
            "realized metrics from predictions with outcomes and estimated ones without "
            "labels (CBPE, DLE), with their alerts. Prints one line per version and arm.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="one model (default: all)")

    def run(self, *args, model, **options):
        checked = live_performance_check(model_name=model)
        if not checked:
            self.stdout.write("no live versions to check")
        for entry in checked:
            self.stdout.write(line(entry))
