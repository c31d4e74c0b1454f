from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Trust types a candidate's model file holds outside the trusted set (scikit-learn, "
            "numpy, scipy, the platform's recipes), so that it can be approved; a reviewer "
            "who did not make the version, with a reason. One audit row.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="version string, e.g. 1.1.0")
        parser.add_argument("types", nargs="+", metavar="TYPE",
                            help="fully qualified type name, as the version lists it")
        parser.add_argument("--user", required=True,
                            help="username of the reviewer (not the version's creator)")
        parser.add_argument("--reason", required=True,
                            help="why these types are safe; kept in the audit trail")

    def run(self, *args, name, version, types, user, reason, **options):
        trusted = services.model_version_types_trust(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), types=types, reason=reason,
        )
        self.stdout.write(f"{trusted}: {user} trusted {', '.join(sorted(set(types)))}; "
                          f"model_sha256={trusted.model_sha256}")
