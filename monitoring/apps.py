from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Monitoring sits above serving and training and joins them up (docs/architecture.md):
        # it follows what they report (the registry's sealed rows: registry events, review
        # requests), lends retraining the prediction log, and adds its registry actions and
        # production's live figures to the version admin, and its sealed schedule changes to
        # verify_audit and the daily anchor.
        from mlregistry.admin_actions import version_action_register
        from mlregistry.anchors import audit_chain_register
        from mlregistry.evidence_panels import version_evidence_panel_register
        from monitoring import receivers  # noqa: F401 - connects the signal receivers
        from monitoring.admin_actions import PROMOTE_SHADOW, PROMOTE_WINNER
        from monitoring.evidence import MONITORING_REPORT, PRODUCTION_LIVE
        from monitoring.schedules import SCHEDULE_CHAIN_AUDIT
        from predictions import selectors as prediction_selectors
        from training import feedback

        feedback.feedback_reader_register(prediction_selectors.prediction_feedback_chunks)
        version_action_register(PROMOTE_WINNER)
        version_action_register(PROMOTE_SHADOW)
        version_evidence_panel_register(PRODUCTION_LIVE)
        version_evidence_panel_register(MONITORING_REPORT)
        audit_chain_register(SCHEDULE_CHAIN_AUDIT)
