"""manage.py check_drift [NAME | --model NAME]: the drift service by hand."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from monitoring.models import DriftReport
from tests.factories import (
    drift_frame,
    drift_outputs,
    prediction_logs_create,
    register_profiled_version,
)


def _run(*args) -> list[str]:
    out = StringIO()
    call_command("check_drift", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def versions(people):
    likes = register_profiled_version(**people)
    other = register_profiled_version(**people, name="drift-other", seed=1)
    frame = drift_frame(n=120, seed=2, shift={"followers": 200.0})
    prediction_logs_create(version=likes, frame=frame, values=drift_outputs(frame),
                           created_at=timezone.now() - timedelta(minutes=5))
    return likes, other


def test_check_drift_prints_a_line_per_live_version_and_writes_reports(versions):
    likes, other = versions

    lines = _run()

    assert lines == [
        (f"drift-likes {likes.version}: ok, n_current=120, dataset_drift=no, "
         "drifted: followers (critical), prediction drift (critical)"),
        (f"drift-other {other.version}: insufficient_data, n_current=0, dataset_drift=no, "
         "drifted: none"),
    ]
    assert sorted(DriftReport.objects.values_list("model_name", "status")) == [
        ("drift-likes", "ok"), ("drift-other", "insufficient_data")]


@pytest.mark.parametrize("args", [["drift-other"], ["--model", "drift-other"]])
def test_check_drift_of_one_model_checks_only_its_versions(versions, args):
    lines = _run(*args)

    assert len(lines) == 1 and lines[0].startswith("drift-other ")
    assert list(DriftReport.objects.values_list("model_name", flat=True)) == ["drift-other"]


def test_check_drift_of_an_unknown_model_fails_with_model_not_found(db):
    with pytest.raises(CommandError, match=r"^model_not_found: "):
        _run("--model", "no-such-model")

    assert not DriftReport.objects.exists()
