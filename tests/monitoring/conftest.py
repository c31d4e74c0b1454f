import pytest


@pytest.fixture
def no_alert_delivery_channels(settings):
    """Alerts raised by a test are recorded, with nowhere to deliver them."""
    settings.ALERT_EMAIL_RECIPIENTS = []
    settings.ALERT_WEBHOOK_URL = ""
