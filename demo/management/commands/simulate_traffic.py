import os

from django.core.management.base import CommandError

from core.commands import ApplicationCommand
from demo import services as demo
from demo import traffic
from monitoring import tasks


def _counts(counter) -> str:
    return ", ".join(f"{what} x{n}" for what, n in sorted(counter.items()))


class Command(ApplicationCommand):
    help = ("Send synthetic predict requests for the demo models to the local server (127.0.0.1 "
            "or localhost only), at a bounded count and rate, with optional input drift, and "
            "post the true outcomes of a share of them as feedback.")

    def add_arguments(self, parser):
        parser.add_argument("--model", dest="models", nargs="+", action="extend", metavar="NAME",
                            help="demo models to call (default: "
                                 f"{', '.join(traffic.DEFAULT_MODELS)}); <model>--<client> "
                                 "calls a per-client model")
        parser.add_argument("--count", type=int, default=1000,
                            help="predict requests in all, taking turns over the models "
                                 "(default 1000: 250 per demo model, enough for the drift "
                                 "check, with PSI sampling noise well under its 0.1 warning; "
                                 f"at most {traffic.MAX_COUNT})")
        parser.add_argument("--rate", type=float, default=20.0,
                            help=f"most predict requests per second (default 20, at most "
                                 f"{traffic.MAX_RATE:g})")
        parser.add_argument("--drift", action="store_true",
                            help=f"shift two numeric features of {traffic.DRIFT_SHARE:.0%}% of "
                                 "the requests by one standard deviation")
        parser.add_argument("--feedback", type=float, default=0.5, metavar="FRACTION",
                            help="share of answered predictions whose true outcome is posted "
                                 "(default 0.5)")
        parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
                            help="the server (default http://127.0.0.1:$PORT, PORT 8000)")
        parser.add_argument("--key", help="API key (default: the demo key seed_demo wrote to "
                                          "$PULSELYTICS_VAR_DIR/demo/api-key, var/ by "
                                          "default)")
        parser.add_argument("--seed", type=int, default=traffic.DEFAULT_SEED,
                            help="picks the rows each request sends (default 1)")
        parser.add_argument("--check", action="store_true",
                            help="then run the drift, SLO and live performance checks at once "
                                 "instead of waiting for their schedules (on the database "
                                 "the settings name: refused unless it is migrated)")

    def run(self, *args, models, count, rate, drift, feedback, url, key, seed, check,
            **options):
        base_url = traffic.local_base_url(url)
        key = key or demo.demo_api_key_read()
        if check:
            # Before any traffic: the checks read the database this process's settings name.
            demo.demo_database_check()
        plan = traffic.traffic_plan(models=models or traffic.DEFAULT_MODELS, count=count,
                                    seed=seed, drift=drift, feedback=feedback)
        self.stdout.write(f"sending {len(plan)} predict requests to {base_url} at up to "
                          f"{rate:g}/s{' with drift' if drift else ''}")
        summary = traffic.traffic_send(plan=plan, base_url=base_url, key=key, rate=rate)
        self.stdout.write(f"predict: sent {summary.sent}, ok {summary.ok}, errors "
                          f"{sum(summary.errors.values())}"
                          + (f" ({_counts(summary.errors)})" if summary.errors else "")
                          + f" in {summary.elapsed_seconds:.1f} s")
        self.stdout.write(f"feedback: sent {summary.feedback_sent}, ok {summary.feedback_ok}, "
                          f"errors {sum(summary.feedback_errors.values())}"
                          + (f" ({_counts(summary.feedback_errors)})"
                             if summary.feedback_errors else ""))
        if summary.unreachable:
            raise CommandError(f"stopped: cannot reach {base_url}: {summary.unreachable}")
        if check:
            # The scheduled tasks' own bodies, run here and now (A/B evaluation is left out:
            # it may stop a challenger, which is for the schedule or `evaluate_ab` to do).
            drift_reports, slo_reports = tasks.drift_check_task(), tasks.slo_check_task()
            live_reports = tasks.performance_check_task()
            self.stdout.write(f"checks: {drift_reports} drift, {slo_reports} SLO and "
                              f"{live_reports} live performance, fairness and anomaly-rate "
                              "reports")
