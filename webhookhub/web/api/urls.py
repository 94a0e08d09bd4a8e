"""/api/v1/: the REST API, its OpenAPI schema and Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from webhookhub.web.api.api_keys import ApiKeyViewSet
from webhookhub.web.api.deliveries import DeliveryViewSet
from webhookhub.web.api.endpoints import EndpointViewSet
from webhookhub.web.api.event_types import EventTypeViewSet
from webhookhub.web.api.events import EventViewSet
from webhookhub.web.triggers.api import TriggerViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("event-types", EventTypeViewSet, basename="event-type")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("triggers", TriggerViewSet, basename="trigger")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]),
        name="swagger-ui",
    ),
]
