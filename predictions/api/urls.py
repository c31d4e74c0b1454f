from django.urls import path

from predictions.api import views

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("models", views.ModelListView.as_view(), name="model-list"),
    path("models/<slug:name>", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<slug:name>/versions", views.ModelVersionsView.as_view(), name="model-versions"),
    path("models/<slug:name>/predict", views.PredictView.as_view(), name="predict"),
    path("models/<slug:name>/explain", views.ExplainView.as_view(), name="explain"),
    path("predictions/<str:prediction_id>/feedback", views.FeedbackView.as_view(),
         name="feedback"),
]
