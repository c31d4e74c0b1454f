import json
from datetime import UTC

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from core.commands import ApplicationCommand
from mlregistry import selectors


class Command(ApplicationCommand):
    help = "Which version of NAME was in production at TIMESTAMP (ISO 8601; naive means UTC)?"

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("timestamp",
                            help="ISO 8601 instant, e.g. 2026-11-20T14:05:00 (naive "
                                 "means UTC)")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help='print {"model", "at", "version", "model_sha256"} as JSON')

    def run(self, *args, name, timestamp, as_json, **options):
        at = parse_datetime(timestamp)
        if at is None:
            raise CommandError(f"not an ISO 8601 timestamp: {timestamp!r}")
        if is_naive(at):
            at = make_aware(at, UTC)
        version = selectors.model_production_at(name=name, at=at)
        if version is None:
            raise CommandError(f"{name} had no production version at {at.isoformat()}")
        if as_json:
            self.stdout.write(json.dumps({"model": name, "at": at.isoformat(),
                                          "version": version.version,
                                          "model_sha256": version.model_sha256}))
        else:
            self.stdout.write(f"{version.version} {version.model_sha256}")
