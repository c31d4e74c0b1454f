from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"
    verbose_name = "Predictions"

    def ready(self) -> None:
        from predictions.api import schema  # noqa: F401 - registers the OpenAPI auth scheme
