"""Model files written before the recipes moved to core.ml still load and answer the same.

The fixture is an engagement-anomaly pipeline (robust z-score detector) pickled at commit
490f627, when its classes lived in mlregistry.training.recipes.engagement_anomaly; that
module path is inside the file, so only the permanent re-export lets it unpickle.
"""

import hashlib
import json
from pathlib import Path

import joblib
import pandas
import pytest

from core.ml.recipes.engagement_anomaly import RobustZScoreDetector, engagement_rates

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures" / "legacy_artifacts"
ARTIFACT = FIXTURES / "engagement_anomaly_zscore.joblib"
EXPECTED = json.loads((FIXTURES / "engagement_anomaly_zscore.json").read_text())


@pytest.fixture(scope="module")
def data() -> bytes:
    data = ARTIFACT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["sha256"]
    return data


def test_fixture_names_the_pre_move_module_path(data):
    assert EXPECTED["pickled_module"].encode() in data


def test_pre_move_artifact_unpickles_into_the_current_classes(data):
    pipeline = joblib.load(ARTIFACT)

    assert isinstance(pipeline.named_steps["model"], RobustZScoreDetector)
    assert pipeline.named_steps["rates"].func is engagement_rates


def test_pre_move_artifact_gives_the_answers_it_gave_when_it_was_written(data):
    pipeline = joblib.load(ARTIFACT)
    probe = pandas.DataFrame(EXPECTED["probe"])

    assert pipeline.predict(probe).tolist() == EXPECTED["predict"]
    assert pipeline.score_samples(probe).tolist() == pytest.approx(EXPECTED["score_samples"],
                                                                    rel=1e-12)
