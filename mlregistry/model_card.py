"""The model card of a version (docs/registry.md#commands `model_card`): the evidence a reviewer
signs off on.

`model_card_build` gathers it as data: purpose, data and its hash, metrics against the production
version, the fairness table, the gates, approvals, the model file's format and the types it holds,
environment and global feature importance. Only plain JSON values (str, int, float, bool, None,
lists, dicts), so the same data renders as Markdown here (`model_card_markdown`, printed by
`manage.py model_card`) and as HTML in the version's admin page. Reads the registry only: no
artifact is loaded.
"""

import re
from datetime import datetime

from core.ml.gates import (
    RATIO_METRICS,
    fairness_metric_label,
    gate_attribute_value,
    gate_threshold,
)
from core.ml.kinds import ANOMALY, BINARY, HIGHER_IS_BETTER, MULTICLASS, PRIMARY_METRIC, REGRESSION
from mlregistry import artifacts, selectors
from mlregistry.models import MLModelVersion, Status

METRIC_ORDER = ["r2", "mae", "rmse", "roc_auc", "accuracy", "precision", "recall", "f1", "brier",
                "contamination", "q01", "q05", "q50", "q95", "q99"]
TOLERANCE = 1e-12
# Group columns of the fairness table per task (see core.ml.fairness).
FAIRNESS_COLUMNS = {
    BINARY: [("n", "Rows"), ("selection_rate", "Selection rate"),
                              ("positives", "Positives"),
                              ("true_positive_rate", "True-positive rate"),
                              ("false_positive_rate", "False-positive rate"),
                              ("accuracy", "Accuracy")],
    ANOMALY: [("n", "Rows"), ("selection_rate", "Flagged rate")],
    REGRESSION: [("n", "Rows"), ("mean_prediction", "Mean prediction"),
                   ("mean_actual", "Mean actual")],
    MULTICLASS: [("n", "Rows"), ("labelled", "Labelled"),
                                  ("accuracy", "Accuracy")],
}
# The manifest's environment in reading order (a jsonb column does not keep key order).
ENVIRONMENT_ORDER = ["python", "scikit-learn", "numpy", "pandas", "skops", "joblib",
                     "code_commit"]
# Audit reasons that are decisions about the version (not its registration).
DECISIONS = {"approved", "auto_approved", "rejected", "approval_withdrawn", "deployed",
             "auto_deployed", "ab_test_started", "shadow_started", "test_ended",
             "test_stopped_automatically", "archived", "rollback", "types_trusted",
             "artifact_migrated", "canary_started", "canary_promoted", "canary_rolled_back"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _environment(manifest: dict | None) -> dict:
    recorded = (manifest or {}).get("environment") or {}
    rank = {name: i for i, name in enumerate(ENVIRONMENT_ORDER)}
    return {name: recorded[name]
            for name in sorted(recorded, key=lambda name: (rank.get(name, len(rank)), name))}


def model_file(manifest: dict | None) -> dict:
    """How the estimator is stored, and each type its skops file holds beyond skops' own
    defaults with who trusts it: "policy" (scikit-learn, numpy, scipy, the platform's
    recipes), "reviewer" (trusted for this version), or "pending" (blocks approval)."""
    manifest = manifest or {}
    trusted = set(manifest.get("trusted_types", []))
    names = sorted({name for entry in manifest.get("artifacts", [])
                    for name in entry.get("types", [])})
    return {
        "format": "pickle" if artifacts.manifest_holds_pickles(manifest) else "skops",
        "types": [{"name": name,
                   "trust": ("policy" if artifacts.type_trusted_by_policy(name)
                             else "reviewer" if name in trusted else "pending")}
                  for name in names],
    }


def production_baseline(version: MLModelVersion, production: MLModelVersion | None
                        ) -> tuple[dict | None, bool]:
    """Production's metrics to set beside the version's, and whether they were measured on
    the same rows: production scored on the version's own validation rows at training
    (`training_report.production_comparison`, training.trainer.production_compare) when that
    was done against today's production version; else the metrics production was registered
    with, on its own validation set."""
    if production is None:
        return None, False
    comparison = (version.training_report or {}).get("production_comparison") or {}
    if comparison.get("version") == production.version and comparison.get("metrics"):
        return comparison["metrics"], True
    return production.metrics, False


def metrics_comparison(*, task: str, metrics: dict, production_metrics: dict | None,
                       same_rows: bool = True) -> list[dict]:
    """One row per metric: candidate, production, difference and which side is better (no
    verdict unless both were measured on the same rows)."""
    primary = (PRIMARY_METRIC.get(task) or (None,))[0]
    production_metrics = production_metrics or {}
    names = list(dict.fromkeys([*metrics, *production_metrics]))
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    names.sort(key=lambda name: (name != primary, rank.get(name, len(rank)), name))
    rows = []
    for name in names:
        candidate, production = metrics.get(name), production_metrics.get(name)
        higher = HIGHER_IS_BETTER.get(name)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                      for v in (candidate, production))
        difference = candidate - production if numeric else None
        better = None
        if same_rows and difference is not None and higher is not None:
            if abs(difference) <= TOLERANCE:
                better = "equal"
            else:
                better = "candidate" if (difference > 0) == higher else "production"
        rows.append({"metric": name, "primary": name == primary, "candidate": candidate,
                     "production": production, "difference": difference,
                     "higher_is_better": higher, "better": better})
    return rows


def _gate_applied(name: str, gate: dict) -> bool:
    """Whether a gate that let the version through judged anything: the validation gate
    compares with production only when both have the metric; the fairness gate judges
    only the protected attributes it could assess. (Read from the recorded figures, so
    versions registered before this distinction show it too.)"""
    if name == "validation":
        return gate.get("metric") is not None and gate.get("production") is not None
    if name == "fairness":
        return any(gate_attribute_value(attribute) is not None
                   for attribute in (gate.get("attributes") or {}).values())
    return True


def gates_summary(gate_results: dict, *, override_justification: str = "") -> list[dict]:
    """Each gate: state (passed, not_applicable, failed, or overridden by an approval) and
    its label, threshold, figures."""
    gates = []
    for name in sorted(gate_results or {}):
        gate = gate_results[name] or {}
        passed = bool(gate.get("passed"))
        state = ("not_applicable" if passed and not _gate_applied(name, gate) else
                 "passed" if passed else "overridden" if override_justification else "failed")
        if name == "validation":
            metric = gate.get("metric")
            direction = {True: "higher is better", False: "lower is better"}.get(
                gate.get("higher_is_better"), "")
            threshold = (f"no worse than production by more than {gate.get('margin')}"
                         f" ({metric}, {direction})" if metric else "not applicable")
            figures = [{"label": f"{side} {metric}", "value": gate.get(side), "passed": None}
                       for side in ("candidate", "production") if metric]
        elif name == "fairness":
            metric, limit = gate_threshold(gate)
            label = fairness_metric_label(metric)
            bound = "at least" if metric in RATIO_METRICS else "at most"
            threshold = f"{label} {bound} {limit} per protected attribute"
            figures = [{"label": f"{attribute} {label}", "value": gate_attribute_value(result),
                        "passed": result.get("passed")}
                       for attribute, result in sorted((gate.get("attributes") or {}).items())]
        else:
            threshold = ""
            figures = [{"label": key, "value": value, "passed": None}
                       for key, value in sorted(gate.items())
                       if key not in ("passed", "reason") and not isinstance(value, dict | list)]
        gates.append({"name": name, "passed": passed, "state": state,
                      "label": state.replace("_", " "),
                      "reason": gate.get("reason", ""), "threshold": threshold,
                      "figures": figures,
                      "override_justification": "" if passed else override_justification})
    return gates


def fairness_table(report: dict | None) -> dict | None:
    """The fairness report as rows per protected attribute and group (None: no report)."""
    if not report:
        return None
    keys = FAIRNESS_COLUMNS.get(report.get("task"), FAIRNESS_COLUMNS[BINARY])

    def rows(audited: dict) -> list[dict]:
        return [_fairness_attribute(name, attribute, keys)
                for name, attribute in sorted(audited.items())]

    return {"task": report.get("task"), "parity_basis": report.get("parity_basis"),
            "positive_label": report.get("positive_label"),
            "min_group_size": report.get("min_group_size"), "rows": report.get("rows"),
            "columns": [label for _, label in keys],
            "attributes": rows(report.get("attributes") or {}),
            "intersections": rows(report.get("intersections") or {})}


def _fairness_attribute(name: str, attribute: dict, keys: list[tuple[str, str]]) -> dict:
    """One attribute (or intersection) of a fairness report as a table's rows."""
    groups = [{"group": group, "small": bool(figures.get("small")),
               "values": [figures.get(key) for key, _ in keys]}
              for group, figures in sorted((attribute.get("groups") or {}).items())]
    return {
        "name": name, "groups": groups,
        "groups_compared": attribute.get("groups_compared"),
        "parity_ratio": attribute.get("demographic_parity_ratio"),
        "parity_difference": attribute.get("demographic_parity_difference"),
        "equal_opportunity_difference": attribute.get("equal_opportunity_difference"),
        "equalized_odds_difference": attribute.get("equalized_odds_difference"),
        "error_rate_difference": attribute.get("error_rate_difference"),
        "accuracy_difference": attribute.get("accuracy_difference"),
        "note": attribute.get("note") or "",
    }


def importance_comparison(importance: dict | None, production: dict | None) -> dict | None:
    """Candidate's and production's mean |contribution| per feature, largest first."""
    if not importance:
        return None
    mine = importance.get("features") or {}
    theirs = (production or {}).get("features") or {}
    names = sorted(set(mine) | set(theirs), key=lambda name: (-(mine.get(name) or 0.0), name))
    return {"method": importance.get("method"), "output_space": importance.get("output_space"),
            "rows": importance.get("rows"), "production_available": bool(theirs),
            "features": [{"feature": name, "candidate": mine.get(name),
                          "production": theirs.get(name)} for name in names]}


def model_card_build(*, version: MLModelVersion) -> dict:
    """The card of one version as data (see the module docstring)."""
    model = version.model
    production = selectors.version_production_counterpart(version=version)
    schema = version.feature_schema or {}
    report = version.training_report or {}
    decisions = [
        {"at": _iso(row.created_at), "actor": _username(row.actor), "reason": row.reason,
         "from_status": row.from_status, "to_status": row.to_status, "notes": row.notes}
        for row in selectors.version_transitions(version=version) if row.reason in DECISIONS
    ]
    baseline, same_rows = production_baseline(version, production)
    return {
        "model": model.name, "version": version.version, "task": model.task,
        "status": version.status, "client_id": model.client_id,
        "purpose": model.description,
        "created_by": _username(version.created_by), "created_at": _iso(version.created_at),
        "model_sha256": version.model_sha256,
        "production_version": production.version if production else None,
        "is_production": version.status == Status.PRODUCTION,
        "data": {
            "training_dataset_sha256": version.training_dataset_sha256,
            "dataset": report.get("dataset"), "training_samples": version.training_samples,
            "rows_read": report.get("rows_read"), "train_rows": report.get("train_rows"),
            "validation_rows": report.get("validation_rows"),
            "training_duration_seconds": version.training_duration_seconds,
            "target": schema.get("target"),
            "features": [{"name": f.get("name"), "dtype": f.get("dtype"),
                          "input": f.get("input", True), "protected": f.get("protected", False),
                          "pii": f.get("pii", False)} for f in schema.get("features", [])],
        },
        "metrics": metrics_comparison(task=model.task, metrics=version.metrics or {},
                                      production_metrics=baseline, same_rows=same_rows),
        "metrics_same_rows": same_rows,
        "fairness": fairness_table(version.fairness_report),
        "gates": gates_summary(version.gate_results,
                               override_justification=version.override_justification),
        "approvals": {
            "approved_by": _username(version.approved_by), "approved_at": _iso(version.approved_at),
            "approval_notes": version.approval_notes,
            "override_justification": version.override_justification,
            "decisions": decisions,
        },
        "model_file": model_file(version.artifact_manifest),
        "environment": _environment(version.artifact_manifest),
        "importance": importance_comparison(version.global_importance,
                                            production.global_importance if production else None),
    }


# --- Markdown -----------------------------------------------------------------------------


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# Markdown's punctuation: a backslash makes each one literal (CommonMark), so free text
# typed by a person can neither open a heading, a list, a link or HTML nor close a table cell.
MARKDOWN_PUNCTUATION = "\\`*_{}[]()#+-.!|<>~"


def _inline(text: str) -> str:
    """Free text as one literal line of Markdown."""
    return "".join(f"\\{c}" if c in MARKDOWN_PUNCTUATION else c for c in " ".join(text.split()))


def _fenced(text: str) -> list[str]:
    """Free text as a literal block: a fence longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *text.splitlines(), fence]


def _cell(value) -> str:
    text = value if isinstance(value, str) else _number(value)
    return re.sub(r"(?<!\\)\|", r"\|", " ".join(text.split())) or " "


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table, followed by the blank line that ends it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def _signed(value) -> str:
    if value is None:
        return "–"
    return "0.0000" if abs(value) <= TOLERANCE else f"{value:+.4f}"


def _header_section(card: dict) -> list[str]:
    title = f"{card['model']} {card['version']}"
    return [f"# Model card: {title}", "",
            f"- Task: {card['task']}", f"- Status: {card['status']}",
            f"- Client: {card['client_id'] or 'global model'}",
            f"- Created by {card['created_by']} at {card['created_at']}",
            f"- model_sha256: `{card['model_sha256']}`", "",
            "## Purpose", "",
            *(_fenced(card["purpose"]) if card["purpose"] else ["No description recorded."]), ""]


def _data_section(data: dict) -> list[str]:
    lines = ["## Data", "", f"- Training dataset SHA256: `{data['training_dataset_sha256']}`"]
    if data["dataset"]:
        lines.append(f"- Dataset file: {_inline(data['dataset'])}")
    lines += [f"- Training samples: {data['training_samples']}"
              + (f" (train {data['train_rows']}, validation {data['validation_rows']})"
                 if data["train_rows"] is not None else ""),
              f"- Training duration: {data['training_duration_seconds']:.2f} s",
              f"- Target: {data['target'] or 'none (unsupervised)'}", ""]
    return lines + _table(["Feature", "Type", "Input", "Protected", "PII"],
                          [[f["name"], f["dtype"], f["input"], f["protected"], f["pii"]]
                           for f in data["features"]])


def _metrics_section(card: dict) -> list[str]:
    production = card["production_version"]
    lines = ["## Metrics against production", ""]
    if production and card["metrics_same_rows"]:
        lines += [f"Compared with production version {production}, both scored on this "
                  "version's validation rows.", ""]
    elif production:
        lines += [f"Production version {production}'s figures are from a different "
                  "validation set (its own, at registration): no verdict is given.", ""]
    else:
        lines += [("This version is the production version." if card["is_production"]
                   else "There is no production version to compare with."), ""]
    return lines + _table(
        ["Metric", "Candidate", "Production", "Difference", "Better"],
        [[m["metric"] + (" (primary)" if m["primary"] else ""), m["candidate"], m["production"],
          _signed(m["difference"]), m["better"] or "–"] for m in card["metrics"]])


def _fairness_section(fairness: dict | None) -> list[str]:
    lines = ["## Fairness", ""]
    if not fairness or not fairness["attributes"]:
        return [*lines, "No protected attributes were audited.", ""]
    lines += [(f"Minimum group size {fairness['min_group_size']}; groups below it are "
               "marked small and left out of the parity figures."), ""]
    for attribute in [*fairness["attributes"], *fairness["intersections"]]:
        figures = [f"parity ratio {_number(attribute['parity_ratio'])}",
                   f"parity difference {_number(attribute['parity_difference'])}"]
        figures += [f"{label} {_number(attribute[key])}" for key, label in (
            ("equal_opportunity_difference", "equal opportunity difference"),
            ("equalized_odds_difference", "equalized odds difference"),
            ("error_rate_difference", "error rate difference"),
            ("accuracy_difference", "accuracy difference")) if attribute[key] is not None]
        lines += [f"### {attribute['name']}", "",
                  "P" + ", ".join(figures)[1:] + "."
                  + (f" {attribute['note']}" if attribute["note"] else ""), ""]
        lines += _table(["Group", *fairness["columns"], "Small"],
                        [[g["group"], *g["values"], g["small"]] for g in attribute["groups"]])
    return lines


def _gates_section(gates: list[dict]) -> list[str]:
    lines = ["## Gates", ""]
    if not gates:
        lines += ["No gate results recorded.", ""]
    for gate in gates:
        lines.append(f"- **{gate['name']}**: {gate['label']} ({gate['reason']})")
        if gate["threshold"]:
            lines.append(f"  - threshold: {gate['threshold']}")
        lines += [f"  - {f['label']}: {_number(f['value'])}" for f in gate["figures"]]
        if gate["override_justification"]:
            lines.append(
                f"  - Override justification: {_inline(gate['override_justification'])}")
    return [*lines, ""]


def _approvals_section(approvals: dict) -> list[str]:
    lines = ["## Approvals", ""]
    if approvals["approved_by"]:
        lines += [(f"Approved by {approvals['approved_by']} at {approvals['approved_at']}: "
                   f"{_inline(approvals['approval_notes'])}"), ""]
    else:
        lines += ["Not approved.", ""]
    if approvals["decisions"]:
        lines += _table(["When", "Who", "Decision", "From", "To", "Notes"],
                        [[d["at"], d["actor"], d["reason"], d["from_status"] or "–",
                          d["to_status"], _inline(d["notes"])] for d in approvals["decisions"]])
    return lines


TRUST_LABELS = {"policy": "trusted set (scikit-learn, numpy, scipy, platform recipes)",
                "reviewer": "trusted by a reviewer (see the decisions)",
                "pending": "AWAITING A REVIEWER: blocks approval"}


def _model_file_section(model_file: dict) -> list[str]:
    lines = ["## Model file", ""]
    if model_file["format"] == "pickle":
        return [*lines, ("A pickle, registered before safe model files: what it holds cannot be "
                         "listed without loading it. `manage.py migrate_artifacts` converts it "
                         "to skops."), ""]
    lines += ["A skops file; loading it creates only the types listed here.", ""]
    if not model_file["types"]:
        return [*lines, "It holds no types beyond skops' own defaults.", ""]
    # Type names come from the file: escaped like any free text.
    return lines + _table(["Type", "Trust"], [[_inline(t["name"]), TRUST_LABELS[t["trust"]]]
                                              for t in model_file["types"]])


def _environment_section(environment: dict) -> list[str]:
    return ["## Environment", "",
            *([f"- {name}: {value if value is not None else 'unknown'}"
               for name, value in environment.items()] or ["Not recorded."]), ""]


def _importance_section(importance: dict | None) -> list[str]:
    lines = ["## Feature importance", ""]
    if importance is None:
        return [*lines, "Not computed for this version.", ""]
    lines += [(f"Mean |SHAP contribution| ({importance['output_space']}, "
               f"{importance['method']}) on {importance['rows']} held-out rows."), ""]
    return lines + _table(["Feature", "This version", "Production"],
                          [[f["feature"], f["candidate"], f["production"]]
                           for f in importance["features"]])


def model_card_markdown(card: dict) -> str:
    """The card as Markdown: one section per part of the card (docs/registry.md#commands)."""
    return "\n".join([
        *_header_section(card), *_data_section(card["data"]), *_metrics_section(card),
        *_fairness_section(card["fairness"]), *_gates_section(card["gates"]),
        *_approvals_section(card["approvals"]), *_model_file_section(card["model_file"]),
        *_environment_section(card["environment"]),
        *_importance_section(card["importance"]),
    ])
