from django.urls import path

from monitoring.api.views import ModelDriftView

urlpatterns = [
    path("models/<slug:name>/drift", ModelDriftView.as_view(), name="model-drift"),
]
