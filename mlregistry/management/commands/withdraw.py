from core.commands import ApplicationCommand
from mlregistry import selectors, services


class Command(ApplicationCommand):
    help = ("Withdraw an approval: a staging version goes back to testing (a live test of it "
            "ends) and needs a new approval.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, e.g. engagement-likes")
        parser.add_argument("version", help="an approved (staging) version, e.g. 1.1.0")
        parser.add_argument("--user", required=True, help="username of the reviewer")
        parser.add_argument("--reason", required=True,
                            help="why; kept in the audit trail")

    def run(self, *args, name, version, user, reason, **options):
        withdrawn = services.model_version_withdraw_approval(
            version=selectors.model_version_get(name=name, version=version),
            user=self.user(user), notes=reason,
        )
        self.stdout.write(f"approval of {withdrawn} withdrawn by {user}: {withdrawn.status}")
