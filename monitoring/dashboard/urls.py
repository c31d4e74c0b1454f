"""The dashboard's URLs, under /admin/monitoring/dashboard/ (pulselytics/urls.py), each
behind the admin's login, CSRF and no-cache wrapper."""

from django.contrib import admin
from django.urls import path

from monitoring.dashboard import views

app_name = "monitoring_dashboard"
urlpatterns = [
    path("", admin.site.admin_view(views.dashboard_view), name="index"),
    path("report/<int:version_id>/", admin.site.admin_view(views.report_download_view),
         name="report"),
    path("alerts/<int:alert_id>/acknowledge/",
         admin.site.admin_view(views.alert_acknowledge_view), name="acknowledge"),
]
