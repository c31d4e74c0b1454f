"""The version page's training details as rows (mlregistry/evidence_tables.py): pure, no
database."""

from core.ml.schema import feature_spec
from mlregistry.evidence_tables import training_details_build

SCHEMA = {"target": "likes", "features": [
    feature_spec(name="followers", dtype="float", minimum=0),
    feature_spec(name="hour", dtype="int", minimum=0, maximum=23),
    feature_spec(name="platform", dtype="category", categories=["tiktok", "instagram"]),
    feature_spec(name="free_text", dtype="category"),
    feature_spec(name="email", dtype="category", pii=True),
    feature_spec(name="region", dtype="category", categories=["north"], protected=True,
                 input=False),
]}
# As training/trainer.py prepare and train_recipe record it (rows with feedback: services).
REPORT = {
    "dataset": "posts.csv", "dataset_rows": 3900, "feedback_rows": 100,
    "feedback_sha256": "f" * 64, "rows_read": 4000, "rows_without_target": 12,
    "imputed": {"followers": 7, "platform": 3}, "missing": {"followers": 5, "platform": 3},
    "infinite": {"followers": 2}, "invalid": {}, "unknown_categories": {"platform": 9},
    "rows_used": 3988, "train_rows": 3190, "validation_rows": 798,
    "notes": {"early_stopping": {"rounds": 12}},
    "production_comparison": {"version": "1.0.0", "rows": 798, "metrics": {"r2": 0.9}},
}


def details(**overrides) -> dict:
    arguments = {"training_report": REPORT, "hyperparameters": {}, "feature_schema": SCHEMA,
                 "metrics": {}, "training_samples": 3988, **overrides}
    return training_details_build(**arguments)


def data(result: dict) -> dict[str, str]:
    return {row["label"]: row["value"] for row in result["data"]}


def test_data_rows_show_the_split_with_each_sides_share():
    rows = data(details())

    assert rows["Training rows"] == "3,190 (80 % of rows used)"
    assert rows["Validation rows"] == "798 (20 % of rows used)"
    assert rows["Rows without target (dropped)"] == "12"
    assert rows["Rows read"] == "4,000" and rows["Rows used"] == "3,988"


def test_data_rows_follow_the_order_rows_went_through_training():
    keys = [row["key"] for row in details()["data"]]

    assert keys == ["dataset", "dataset_rows", "feedback_rows", "feedback_sha256", "rows_read",
                    "rows_without_target", "rows_used", "train_rows", "validation_rows"]


def test_data_rows_show_only_what_the_report_has():
    rows = data(details(training_report={"rows_read": 80, "train_rows": 52}))

    assert rows == {"Rows read": "80", "Training rows": "52"}


def test_client_and_skipped_feedback_rows_are_shown_when_recorded():
    report = {**REPORT, "rows_for_client": 1200, "feedback_rows_skipped_as_anomalies": 4,
              "feedback_rows_over_client_share": 6}

    rows = data(details(training_report=report))

    assert rows["Rows of this client"] == "1,200"
    assert rows["Feedback rows skipped (outcome was an anomaly)"] == "4"
    assert rows["Feedback rows skipped (beyond a client's share)"] == "6"


def test_external_version_without_a_report_shows_its_evaluations_row_counts():
    result = details(training_report={}, hyperparameters={"external": True},
                     metrics={"r2": 0.8, "rows_without_target": 3}, training_samples=997)

    assert result["external"] and not result["has_report"]
    assert data(result) == {"Labelled rows (metrics computed on)": "997",
                            "Rows without target (left out of the metrics)": "3"}
    assert result["coercion"] is None


def test_external_version_report_shows_its_labelled_rows_and_hides_diagnostics():
    report = {"dataset": "leads.csv", "validation_rows": 997,
              "validation_diagnostics": {"kind": "binary", "bins": []}}

    result = details(training_report=report, hyperparameters={"external": True},
                     metrics={"rows_without_target": 3})

    assert data(result) == {"Dataset file": "leads.csv", "Validation rows": "997",
                            "Rows without target (left out of the metrics)": "3"}
    assert result["other"] == []  # the diagnostics have a section of their own


def test_coercion_table_has_a_row_per_feature_in_schema_order():
    coercion = details()["coercion"]

    assert coercion["columns"] == ["Missing", "Infinite", "Unparseable", "Unknown category",
                                   "Imputed (total)"]
    assert coercion["rows"] == [
        {"feature": "followers", "counts": ["5", "2", "–", "–", "7"]},
        {"feature": "platform", "counts": ["3", "–", "–", "9", "3"]},
    ]


def test_coercion_table_is_empty_when_nothing_was_coerced():
    report = {**REPORT, "imputed": {}, "missing": {}, "infinite": {}, "unknown_categories": {}}

    assert details(training_report=report)["coercion"]["rows"] == []


def test_notes_and_unknown_report_keys_are_shown_readably():
    result = details(training_report={**REPORT, "sampling": {"kept": 0.5, "by": ["region"]}})

    assert result["notes"] == [{"name": "early_stopping.rounds", "value": "12"}]
    assert result["other"] == [{"name": "sampling", "value": "kept: 0.5; by: region"}]


def test_hyperparameters_are_name_value_rows_by_name_with_nested_keys_joined():
    hyperparameters = {"model": "GradientBoostingClassifier", "learning_rate": 0.05,
                       "calibration": {"method": "sigmoid", "ensemble": False},
                       "target_transform": None, "rates": ["likes", "shares"],
                       "steps": [{"name": "prep"}]}

    rows = details(hyperparameters=hyperparameters)["hyperparameters"]

    assert rows == [
        {"name": "calibration.ensemble", "value": "false"},
        {"name": "calibration.method", "value": "sigmoid"},
        {"name": "learning_rate", "value": "0.05"},
        {"name": "model", "value": "GradientBoostingClassifier"},
        {"name": "rates", "value": "likes, shares"},
        {"name": "steps", "value": '[{"name": "prep"}]'},  # no plainer form for a list of objects
        {"name": "target_transform", "value": "none"},
    ]


def test_feature_schema_rows_say_what_each_feature_allows():
    rows = {row["name"]: row for row in details()["features"]}

    assert rows["followers"]["allowed"] == "≥ 0"
    assert rows["hour"]["allowed"] == "0 to 23"
    assert rows["platform"]["allowed"] == "instagram, tiktok"
    assert rows["free_text"]["allowed"] == "any (not enumerated)"
    assert rows["email"]["allowed"] == "any (personal: values never listed)"
    assert rows["email"]["pii"] and not rows["email"]["protected"]
    assert rows["region"]["protected"] and not rows["region"]["input"]
