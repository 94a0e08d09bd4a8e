from rest_framework import mixins, viewsets
from rest_framework.pagination import PageNumberPagination

from accounts.api.permissions import IsPlatformStaff, IsTenantAdmin
from accounts.api.scoping import TenantScopedMixin
from events.api.filters import EventFilter
from events.api.serializers import EventSerializer, EventTypeSerializer
from events.models import Event, EventType


class EventTypePagination(PageNumberPagination):
    page_size = 100


class EventTypeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The event-type catalog. Tenant admins read it; platform staff may add custom types."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    pagination_class = EventTypePagination
    lookup_value_regex = r"[a-z0-9_.]+"

    def get_permissions(self):
        return [IsPlatformStaff()] if self.action == "create" else [IsTenantAdmin()]


class EventReadViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Events of the tenant, newest first."""

    serializer_class = EventSerializer
    filterset_class = EventFilter

    def get_queryset(self):
        return self.scope(Event.objects.all())
