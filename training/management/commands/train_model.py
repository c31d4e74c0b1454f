from tqdm import tqdm

from core.commands import ApplicationCommand
from mlregistry import services as registry_services
from training import services as training_services


class Command(ApplicationCommand):
    help = ("Train a recipe (globally, or on one client's rows with --client) and register "
            "the candidate in testing. Prints the version string as the last line.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="recipe name, e.g. engagement-likes")
        parser.add_argument("--data", help="CSV or Parquet file (default: the latest registered)")
        parser.add_argument("--client", default="", help="train on this client's rows only")
        parser.add_argument("--user", help="who trains (default: the system account)")
        parser.add_argument("--seed", type=int,
                            help="random seed (default: settings.TRAINING_SEED)")

    def run(self, *args, name, data, client, user, seed, **options):
        user = self.user(user) if user else registry_services.system_user_get()
        with tqdm(total=100, desc=name, unit="%", file=self.stderr._out,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:
            def progress(fraction: float, stage: str) -> None:
                bar.update(round(fraction * 100) - bar.n)
                bar.set_postfix_str(stage)

            version = training_services.model_train(
                recipe_name=name, user=user, data_path=data, client_id=client, seed=seed,
                progress=progress,
            )
        figures = ", ".join(f"{name}={value:.4g}" for name, value in version.metrics.items()
                            if isinstance(value, float))
        self.stdout.write(f"trained {version.model.name} {version.version} ({version.status}): "
                          f"{figures}")
        for gate_name, gate in sorted(version.gate_results.items()):
            self.stdout.write(f"{gate_name} gate: {'passed' if gate.get('passed') else 'FAILED'} "
                              f"({gate.get('reason', '')})")
        self.stdout.write(version.version)
