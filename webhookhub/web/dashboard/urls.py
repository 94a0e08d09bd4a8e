from django.urls import path

from webhookhub.web.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("deliveries/", views.delivery_log, name="deliveries"),
    path("deliveries/<int:pk>/", views.delivery_detail, name="delivery"),
    path("deliveries/<int:pk>/resend/", views.delivery_resend, name="delivery_resend"),
    path("deliveries/<int:pk>/cancel/", views.delivery_cancel, name="delivery_cancel"),
    path("endpoints/<str:pk>/", views.endpoint_detail, name="endpoint"),
    path("endpoints/<str:pk>/test/", views.endpoint_test, name="endpoint_test"),
    path("endpoints/<str:pk>/enabled/", views.endpoint_toggle, name="endpoint_toggle"),
    path("endpoints/<str:pk>/replay/", views.endpoint_replay, name="endpoint_replay"),
    path("endpoints/<str:pk>/preview/", views.endpoint_preview, name="endpoint_preview"),
    path("event-types/", views.event_types, name="event_types"),
]
