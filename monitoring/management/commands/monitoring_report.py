import json
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder

from core.commands import ApplicationCommand
from mlregistry import selectors
from monitoring.report import monitoring_report_build, monitoring_report_html


class Command(ApplicationCommand):
    help = ("Write a version's monitoring report: one self-contained HTML file (inline SVG, "
            "nothing loaded from the network) with its evidence, drift per feature, live "
            "performance, fairness and test verdicts; or the same data as JSON.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="the version, e.g. 1.0.0")
        parser.add_argument("--out", required=True, help="the file to write ('-': stdout)")
        parser.add_argument("--format", dest="report_format", choices=["html", "json"],
                            default="html",
                            help="html (default): the file to open and share; json: the data")

    def run(self, *args, name, version, out, report_format, **options):
        found = selectors.model_version_get(name=name, version=version)
        if report_format == "json":
            text = json.dumps(monitoring_report_build(version=found), cls=DjangoJSONEncoder,
                              indent=2) + "\n"
        else:
            text = monitoring_report_html(version=found)
        if out == "-":
            self.stdout.write(text, ending="")
            return
        Path(out).write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote the {report_format} report of {found} to {out}")
