"""What a process imports when it starts: `django.setup()` (every gunicorn and Celery worker,
every `manage.py` command) must not import the model libraries, nor must the drift check,
which runs in a fresh process (bench/drift.py). They are imported where a model file is
read or written, a model trained, compiled or explained.

Read in a fresh subprocess: the suite's own process has imported everything already.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_LIBRARIES = {"sklearn", "skops", "joblib", "shap"}
PROBE = """
import json, sys
import django

def imported():
    return sorted({name.split(".")[0] for name in sys.modules})

django.setup()
after_setup = imported()
from monitoring.drift import drift_check  # noqa: F401
print(json.dumps({"setup": after_setup, "drift": imported()}))
"""


@pytest.fixture(scope="module")
def imported_at_start(tmp_path_factory) -> dict[str, set[str]]:
    """Top-level packages imported after django.setup(), then after importing the drift
    check, in one fresh process with the development settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PULSELYTICS_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
    }
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    return {stage: set(names) for stage, names in json.loads(result.stdout).items()}


def test_setup_imports_no_model_library(imported_at_start):
    assert imported_at_start["setup"] & MODEL_LIBRARIES == set()


def test_drift_check_imports_no_model_library(imported_at_start):
    assert imported_at_start["drift"] & MODEL_LIBRARIES == set()
