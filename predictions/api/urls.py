from django.urls import path

from predictions.api import feedback_views, instance_schema_views, views

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("models", views.ModelListView.as_view(), name="model-list"),
    path("models/<slug:name>", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<slug:name>/versions", views.ModelVersionsView.as_view(), name="model-versions"),
    path("models/<slug:name>/schema", instance_schema_views.ModelInstanceSchemaView.as_view(),
         name="model-schema"),
    path("models/<slug:name>/predict", views.PredictView.as_view(), name="predict"),
    path("models/<slug:name>/explain", views.ExplainView.as_view(), name="explain"),
    path("models/<slug:name>/versions/<str:version>/predict", views.PinnedPredictView.as_view(),
         name="pinned-predict"),
    path("models/<slug:name>/versions/<str:version>/explain", views.PinnedExplainView.as_view(),
         name="pinned-explain"),
    path("predictions/<str:prediction_id>", views.PredictionRecordView.as_view(),
         name="prediction-record"),
    path("predictions/<str:prediction_id>/explanation", views.PredictionExplanationView.as_view(),
         name="prediction-explanation"),
    path("predictions/<str:prediction_id>/feedback", views.FeedbackView.as_view(),
         name="feedback"),
    path("feedback", feedback_views.FeedbackBatchView.as_view(), name="feedback-batch"),
]
