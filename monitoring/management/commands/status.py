import json

from django.core.serializers.json import DjangoJSONEncoder

from core.commands import ApplicationCommand
from monitoring.status import models_status


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"  # the database hands back times in UTC


def _figure(value, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def _drift_line(drift: dict | None) -> str:
    if drift is None:
        return "drift never checked"
    drifted = drift["drifted_features"] + (["(prediction)"] if drift["prediction_drifted"] else [])
    return (f"drift {drift['status']} at {_when(drift['checked_at'])}: "
            f"{', '.join(drifted) or 'nothing'} drifted")


def _performance_lines(performance: list[dict]) -> list[str]:
    if not performance:
        return ["performance never measured"]
    return [f"performance as {report['arm']} at {_when(report['checked_at'])} on "
            f"{report['n_labelled']} labelled: "
            + (", ".join(f"{name} {_figure(value)}" for name, value in report["metrics"].items())
               or "no metric")
            for report in performance]


# FairnessReport.passed: None when no group was large enough to judge.
FAIRNESS_STATES = {True: "passed", False: "failed", None: "not judged"}


def _fairness_line(fairness: dict | None) -> str:
    if fairness is None:
        return "fairness never audited"
    return f"fairness {FAIRNESS_STATES[fairness['passed']]} at {_when(fairness['checked_at'])}"


class Command(ApplicationCommand):
    help = ("Read-only overview of every model (or one): live versions and their traffic, the "
            "running A/B test's arms, open alerts, and the last drift, SLO, performance and "
            "fairness results of the scheduled checks.")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one model (default: every model)")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help="print a JSON array, one object per model")

    def run(self, *args, name, as_json, **options):
        overview = models_status(model_name=name)
        if as_json:
            self.stdout.write(json.dumps(overview, cls=DjangoJSONEncoder, indent=2))
            return
        if not overview:
            self.stdout.write("no models registered")
        for model in overview:
            self.write_model(model)

    def write_model(self, model: dict) -> None:
        client = f", client {model['client_id']}" if model["client_id"] else ""
        self.stdout.write(f"{model['model']} ({model['task']}{client})")
        if not model["live"]:
            self.stdout.write("  no live version")
        for live in model["live"]:
            named = f", experiment {live['experiment']}" if live["experiment"] else ""
            canary = (f", canary until {_when(live['canary_until'])}" if live["canary_until"]
                      else "")
            self.stdout.write(f"  {live['version']} {live['role']} "
                              f"{live['traffic_percentage']}%{canary}{named}")
            for line in (_drift_line(live["drift"]), *_performance_lines(live["performance"]),
                         _fairness_line(live["fairness"])):
                self.stdout.write(f"    {line}")
        if canary := model["canary"]:
            self.stdout.write(
                f"  canary: {canary['canary']} against {canary['champion']}: "
                f"{canary['decision']} at {_when(canary['checked_at'])}, bake until "
                f"{_when(canary['bake_until'])}")
        for shadow in model["shadow_tests"]:
            self.stdout.write(
                f"  shadow test: {shadow['shadow']} against {shadow['champion']}: "
                f"{shadow['verdict']} on {shadow['pairs']} answer pairs at "
                f"{_when(shadow['evaluated_at'])}")
        if ab_test := model["ab_test"]:
            named = f" {ab_test['experiment']}" if ab_test["experiment"] else ""
            self.stdout.write(
                f"  A/B test{named}: {ab_test['challenger']} against {ab_test['champion']}: "
                f"{ab_test['verdict']} ({ab_test['metric'] or 'no metric'}, p = "
                f"{_figure(ab_test['p_value'], '.3g')}) at {_when(ab_test['evaluated_at'])}")
        if slo := model["slo"]:
            self.stdout.write(
                f"  SLO at {_when(slo['checked_at'])}: p95 {_figure(slo['latency_p95_ms'], '.0f')}"
                f" ms, error rate {_figure(slo['error_rate'], '.2%')} of {slo['requests']} "
                f"requests; breaches: {', '.join(slo['breaches']) or 'none'}")
        else:
            self.stdout.write("  SLO never checked")
        self.stdout.write(f"  open alerts: {len(model['open_alerts'])}")
        for alert in model["open_alerts"]:
            version = f" {alert['version']}" if alert["version"] else ""
            self.stdout.write(f"    #{alert['id']} [{alert['severity']}] {alert['kind']}"
                              f"{version}: {alert['message']}")
