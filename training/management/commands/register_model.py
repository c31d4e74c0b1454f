from core.commands import ApplicationCommand
from core.ml.kinds import TASKS
from mlregistry import artifacts
from training import registration


class Command(ApplicationCommand):
    help = (
        "Register an externally trained estimator or Pipeline (a skops file; a joblib "
        "pickle only with --trust-pickle) as a new version in testing; schema, metrics and "
        "reference profile come from the data. Prints the version string as the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="model name, new or existing")
        parser.add_argument("--artifact", required=True,
                            help="the fitted model, saved with skops.io.dump")
        parser.add_argument("--trust-pickle", action="store_true",
                            help="accept a joblib/pickle file (it runs code when loaded) and "
                                 "convert it to skops; recorded in the audit trail")
        parser.add_argument("--data", required=True, help="CSV or Parquet file")
        parser.add_argument("--target", required=True, help="target column in the data")
        parser.add_argument("--task", required=True, choices=TASKS,
                            help="what the model predicts")
        parser.add_argument("--user", required=True, help="username of the registering person")
        parser.add_argument("--protected", nargs="+", action="extend", default=[],
                            metavar="COL", help="protected attribute column(s)")
        parser.add_argument("--pii", action="append", default=[], metavar="COL",
                            help="a personal column (repeatable): its values are never stored, "
                                 "logged, published or echoed")
        parser.add_argument("--client", default="", help="client id of a per-client model")
        parser.add_argument("--description", default="",
                            help="what the model is for (a new model only)")

    def run(self, *args, name, artifact, data, target, task, user, protected, pii, client,
            description, trust_pickle, **options):
        version = registration.model_version_register_external(
            name=name, task=task, user=self.user(user), artifact_path=artifact, data_path=data,
            target=target, protected=protected, pii=pii, client_id=client,
            description=description, trust_pickle=trust_pickle,
        )
        self.stdout.write(
            f"registered {version.model.name} {version.version} ({version.status}) "
            f"model_sha256={version.model_sha256}"
        )
        for gate_name, gate in sorted(version.gate_results.items()):
            self.stdout.write(f"{gate_name} gate: {'passed' if gate.get('passed') else 'FAILED'} "
                              f"({gate.get('reason', '')})")
        for type_name in artifacts.types_needing_review(version.artifact_manifest):
            self.stdout.write(f"type awaiting a reviewer's trust before approval: {type_name}")
        self.stdout.write(version.version)
