"""The layering of docs/architecture.md, read from the code with `ast` so that it is kept.

Every import counts, at module level or inside a function. Migrations are left out (they
name other apps' tables by label, not by import).
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "mlregistry", "training", "predictions", "monitoring", "demo")
CONFIG = "pulselytics"

# What each package may import: only the layers below it (docs/architecture.md).
ALLOWED = {
    "core": set(),
    "mlregistry": {"core"},
    "training": {"core", "mlregistry"},
    "predictions": {"core", "mlregistry"},
    "monitoring": {"core", "mlregistry", "training", "predictions"},
    "demo": {"core", "mlregistry", "training", "predictions", "monitoring"},
    CONFIG: {"core", "mlregistry", "training", "predictions", "monitoring", "demo"},
}
FIRST_PARTY = {*APPS, CONFIG}


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _imported(path: Path) -> set[str]:
    """Dotted names of every module `path` imports (absolutely), wherever it imports them."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where, for every cross-package import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in ALLOWED:
        for path in _modules(package):
            for name in _imported(path):
                target = name.split(".")[0]
                if target in FIRST_PARTY and target != package:
                    where = f"{path.relative_to(ROOT)} imports {name}"
                    edges.setdefault((package, target), []).append(where)
    return edges


def _cycle(edges) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    visiting, done = [], set()

    def visit(node):
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return None
        visiting.append(node)
        for successor in sorted(graph.get(node, ())):
            found = visit(successor)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node)
        if found:
            return found
    return None


def test_every_app_package_is_listed_in_the_layering():
    packages = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert packages <= set(ALLOWED), f"add {packages - set(ALLOWED)} to ALLOWED"


def test_no_package_imports_a_layer_above_it():
    forbidden = {edge: where for edge, where in import_edges().items()
                 if edge[1] not in ALLOWED[edge[0]]}
    assert forbidden == {}


@pytest.mark.parametrize(("source", "target"), [
    ("mlregistry", "predictions"), ("mlregistry", "monitoring"), ("mlregistry", "training"),
    ("training", "predictions"), ("training", "monitoring"), ("predictions", "monitoring"),
])
def test_layer_edge_that_must_not_exist(source, target):
    assert (source, target) not in import_edges()


def test_package_import_graph_has_no_cycle():
    assert _cycle(import_edges()) is None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({("a", "b"): [], ("b", "c"): [], ("c", "a"): []}) == ["a", "b", "c", "a"]


def test_core_ml_touches_no_database():
    database = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("core")
        if "ml" in path.relative_to(ROOT).parts
        for name in _imported(path) if name.startswith(("django.db", "django.contrib"))
    )
    assert database == []


TASK_NAMES = {"regression", "binary_classification", "multiclass_classification",
              "anomaly_detection"}


def test_task_names_are_spelled_out_only_in_core_ml_kinds():
    """Every other module names a task kind through core.ml.kinds' constants."""
    spelled = []
    for package in ALLOWED:
        for path in _modules(package):
            if path == ROOT / "core" / "ml" / "kinds.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in TASK_NAMES:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert spelled == []


# The original product specification, which is not in the repository.
CITATION = re.compile(r"SPEC\s?§|SPEC\.md")


def test_no_code_comment_cites_a_document_outside_the_repository():
    cited = [f"{path.relative_to(ROOT)}:{number}"
             for package in ALLOWED for path in _modules(package)
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if CITATION.search(line)]
    assert cited == []


# Every Celery task name of the layout before core/ and training/ existed: messages already
# queued, and schedule rows, name tasks by these strings.
TASK_NAMES_BEFORE_THE_LAYERING = {
    "mlregistry.tasks.training_job_run_task",
    "monitoring.tasks.drift_check_task",
    "monitoring.tasks.slo_check_task",
    "monitoring.tasks.performance_check_task",
    "monitoring.tasks.ab_evaluate_task",
    "monitoring.tasks.retraining_check_task",
    "monitoring.tasks.prediction_log_purge_task",
    "monitoring.tasks.alert_delivery_send_task",
    "monitoring.tasks.alert_deliveries_resend_task",
}


def test_celery_task_names_of_the_earlier_layout_are_still_registered():
    from pulselytics.celery import app

    app.loader.import_default_modules()
    assert set(app.tasks) >= TASK_NAMES_BEFORE_THE_LAYERING
