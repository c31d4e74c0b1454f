from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.prometheus import metrics_view

urlpatterns = [
    # The first address the start banner prints and the admin's "view site" link.
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/monitoring/dashboard/", include("monitoring.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("predictions.api.urls")),
    path("api/v1/", include("monitoring.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[],
                                                   permission_classes=[]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[],
                                                     permission_classes=[]), name="docs"),
    path("metrics", metrics_view, name="metrics"),
]

handler403 = "core.api.json_permission_denied"
handler404 = "core.api.json_not_found"
handler500 = "core.api.json_server_error"
