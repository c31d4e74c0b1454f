from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Monitoring sits above serving and training and joins them up (docs/architecture.md):
        # it follows what they report, lends retraining the prediction log, and adds its
        # registry actions to the version admin.
        from mlregistry.admin_actions import version_action_register
        from monitoring import receivers  # noqa: F401 - connects the signal receivers
        from monitoring.admin_actions import PROMOTE_WINNER
        from predictions import selectors as prediction_selectors
        from training import feedback

        feedback.feedback_reader_register(prediction_selectors.prediction_feedback_chunks)
        version_action_register(PROMOTE_WINNER)
