"""Where a retrain reads labelled predictions: a reader registered by an app above training."""

import pytest

from predictions import selectors as prediction_selectors
from training import feedback


def test_monitoring_registers_the_prediction_log_as_the_reader():
    # Done in MonitoringConfig.ready(): training itself never imports serving.
    assert feedback.feedback_reader() is prediction_selectors.prediction_feedback_chunks


def test_a_retrain_on_feedback_without_a_reader_is_refused_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(feedback, "_readers", {})

    with pytest.raises(feedback.FeedbackUnavailableError) as refused:
        feedback.feedback_chunks(model_name="engagement-likes")

    assert refused.value.code == "feedback_unavailable"
