from core.commands import ApplicationCommand
from demo import services as demo


class Command(ApplicationCommand):
    help = ("Create the demo: users, synthetic posts and leads, every recipe trained, "
            "approved and deployed, and an API key. Safe to run again.")

    def run(self, *args, **options):
        summary = demo.demo_seed()
        for line in summary.deployed:
            self.stdout.write(f"deployed {line}")
        if summary.already_live:
            self.stdout.write(f"already live: {', '.join(summary.already_live)}")
        if summary.candidate:
            self.stdout.write(f"awaiting review: {summary.candidate}")
        self.stdout.write(f"Demo logins (password for each: {summary.password}):")
        for username, role in summary.users:
            self.stdout.write(f"  {username:<6} {role}")
        self.stdout.write(f"Demo API key: {summary.api_key}")
