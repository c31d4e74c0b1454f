"""A client generated from the live OpenAPI document works as it comes out (issue 16, item 8):
openapi-python-client, in a virtualenv of its own (tests/api/client_venv.py), generates a
client from /api/schema/ of a live server, and that client, run by the venv's Python
(tests/api/generated_client_use.py), reads a model's instance schema, predicts, explains,
posts feedback and reads the record back, without a hand edit. The same run checks that
every property the document lets be null takes null by OpenAPI 3.0's rules
(openapi-schema-validator's OAS30Validator)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from demo import data as demo_data
from mlregistry import selectors
from mlregistry import services as registry
from predictions import services as serving
from predictions.models import SCOPES, PredictionLog
from tests.api.client_venv import client_venv_python
from training import services as training

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODEL = "engagement-likes"  # a regression recipe: any number is an outcome
USE = Path(__file__).with_name("generated_client_use.py")


def run(python: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    # The venv's own bin first: the generator formats its output with the venv's ruff.
    env = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(cwd)}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def deployed(people, tmp_path) -> None:
    """MODEL trained small on demo data, approved and deployed (explainable: it has a
    reference profile to draw background rows from)."""
    data = tmp_path / "posts.csv"
    demo_data.demo_posts(n=400).to_csv(data, index=False)
    version = training.model_train(recipe_name=MODEL, user=people["user"], data_path=data)
    version = registry.model_version_approve(
        version=version, user=people["reviewer"], notes="generated client",
        override_justification="small test data" if selectors.failed_gates(version) else "")
    registry.model_version_deploy(version=version, user=people["deployer"],
                                  notes="generated client")


def test_generated_client_predicts_explains_and_posts_feedback(people, live_server, tmp_path):
    python = client_venv_python()
    deployed(people, tmp_path)
    _, key = serving.api_key_create(name="generated client", scopes=SCOPES)
    document = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10)
    schema_path = tmp_path / "openapi.json"
    schema_path.write_bytes(document.content)

    generated = run(python, "-m", "openapi_python_client", "generate", "--path",
                    str(schema_path), "--meta", "none", "--output-path",
                    str(tmp_path / "pulselytics_client"), cwd=tmp_path)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout
    used = run(python, str(USE), live_server.url, key, MODEL, str(schema_path), cwd=tmp_path)

    assert used.returncode == 0, used.stdout + used.stderr
    got = json.loads(used.stdout)
    logged = PredictionLog.objects.get(prediction_id=got["prediction_id"])
    assert (logged.actual, got["feedback_actual"]) == (got["value"], got["value"])
    assert got["record_outcome"]["actual"] == got["value"]
    assert got["null_taken"] and all(got["null_taken"].values()), got["null_taken"]
    assert got["null_taken"]["DriftReport.prediction"] is True
