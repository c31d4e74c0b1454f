from core.commands import ApplicationCommand
from mlregistry import selectors
from monitoring.ab import ab_evaluate, ab_evaluate_all
from monitoring.shadow import shadow_evaluate, shadow_evaluate_all


def _figure(value, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


class Command(ApplicationCommand):
    help = ("Evaluate every running A/B test (or one model's): per arm counts, live metric, "
            "latency and error rate, a significance test and a verdict; a challenger that "
            "breaks the SLO or clearly loses is stopped. Every running shadow test too: "
            "agreement with the champion and a paired test. Prints one line per test.")

    def add_arguments(self, parser):
        parser.add_argument("--model", help="one model (default: all)")

    def run(self, *args, model, **options):
        if model:
            selectors.model_get(name=model)  # an unknown name is an error, not silence
        evaluations = ab_evaluate(model_name=model) if model else ab_evaluate_all()
        shadows = shadow_evaluate(model_name=model) if model else shadow_evaluate_all()
        if not evaluations and not shadows:
            self.stdout.write("no running A/B or shadow test")
        for evaluation in shadows:
            figures = (f"agreement {_figure(evaluation.agreement, '.1%')}"
                       if evaluation.agreement is not None else
                       f"mean |difference| {_figure(evaluation.mean_abs_difference)}")
            self.stdout.write(
                f"{evaluation.model_name}: shadow {evaluation.shadow.version} against champion "
                f"{evaluation.champion.version}: {evaluation.verdict}; {figures} on "
                f"{evaluation.pairs} answer pairs ({evaluation.labelled} with outcomes)"
                + (f"; {evaluation.reason}" if evaluation.reason else ""))
        for evaluation in evaluations:
            champion, challenger = evaluation.arms["champion"], evaluation.arms["challenger"]
            line = (f"{evaluation.model_name}: challenger {challenger['version']} against "
                    f"champion {champion['version']}: {evaluation.verdict}")
            if evaluation.metric:
                line += (f"; {evaluation.metric} {_figure(challenger['metric'])} against "
                         f"{_figure(champion['metric'])} on {challenger['n_labelled']}/"
                         f"{champion['n_labelled']} labelled; {evaluation.test} "
                         f"p = {_figure(evaluation.p_value, '.3g')}")
            if evaluation.action == "stopped":
                line += f"; STOPPED: {evaluation.reason}"
            elif evaluation.reason:
                line += f"; {evaluation.reason}"
            self.stdout.write(line)
