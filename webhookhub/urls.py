from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from webhookhub.web import favicon, health, metrics
from webhookhub.web.triggers import view as trigger_view

admin.site.site_url = "/dashboard/"  # the admin's "View site" link opens the delivery dashboard
admin.site.site_header = "webhookhub"
admin.site.site_title = "webhookhub admin"
admin.site.index_title = "Webhook settings"
admin.site.enable_nav_sidebar = False  # the tables need the width (every page has breadcrumbs)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:overview")),
    path("favicon.ico", favicon.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("webhookhub.web.api.urls")),
    path("dashboard/", include("webhookhub.web.dashboard.urls")),
    path("triggers/<str:trigger_id>", trigger_view.capture, name="trigger-capture"),
    path("triggers/<str:trigger_id>/", trigger_view.capture),
]
