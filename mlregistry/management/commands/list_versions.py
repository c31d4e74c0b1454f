import json

from django.core.serializers.json import DjangoJSONEncoder

from core.commands import ApplicationCommand
from mlregistry import selectors


class Command(ApplicationCommand):
    help = "List a model's versions, newest first."

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help="print a JSON array, one object per version, instead of "
                                 "the table")

    def run(self, *args, name, as_json, **options):
        versions = selectors.model_versions_list(name=name)
        if as_json:
            self.stdout.write(json.dumps([{
                "version": v.version, "status": v.status,
                "traffic_percentage": v.traffic_percentage, "is_shadow": v.is_shadow,
                "created_at": v.created_at, "created_by": v.created_by.get_username(),
                "approved_by": v.approved_by.get_username() if v.approved_by else None,
                "model_sha256": v.model_sha256, "failed_gates": selectors.failed_gates(v),
            } for v in versions], cls=DjangoJSONEncoder, indent=2))
            return
        self.stdout.write(
            f"{'VERSION':<10} {'STATUS':<11} {'TRAFFIC':>7} {'SHADOW':<6} {'CREATED':<20} "
            f"{'CREATED BY':<14} {'APPROVED BY':<14} {'SHA256':<12} GATES"
        )
        for v in versions:
            failed = selectors.failed_gates(v)
            self.stdout.write(
                f"{v.version:<10} {v.status:<11} {v.traffic_percentage:>6}% "
                f"{'yes' if v.is_shadow else '':<6} {v.created_at:%Y-%m-%d %H:%M:%S} "
                f"{v.created_by.get_username():<14} "
                f"{v.approved_by.get_username() if v.approved_by else '':<14} "
                f"{v.model_sha256[:12]} {'FAILED ' + ','.join(failed) if failed else 'passed'}"
            )
