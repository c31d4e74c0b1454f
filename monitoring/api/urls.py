from django.urls import path

from monitoring.api.views import ModelDriftView, ModelPerformanceView

urlpatterns = [
    path("models/<slug:name>/drift", ModelDriftView.as_view(), name="model-drift"),
    path("models/<slug:name>/performance", ModelPerformanceView.as_view(),
         name="model-performance"),
]
