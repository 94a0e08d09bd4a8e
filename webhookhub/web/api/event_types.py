"""``/api/v1/event-types/``: the event-type catalog. Tenant admins read it; platform staff may add custom types."""

from typing import Any

from rest_framework import mixins, serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from events.models import EVENT_TYPE_NAME, EventType
from events.schemas import schema_problem
from webhookhub.web.api.permissions import IsPlatformStaff, IsTenantAdmin
from webhookhub.web.api.strict import StrictFieldsMixin


class EventTypeSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    name = serializers.RegexField(EVENT_TYPE_NAME, max_length=100, help_text="dotted lower case, e.g. order.paid")

    class Meta:
        model = EventType
        fields = ["name", "description", "schema", "schema_mode", "example", "archived"]

    def validate_name(self, value: str) -> str:
        if EventType.objects.filter(name=value).exists():
            raise serializers.ValidationError("An event type with this name exists.")
        return value

    def validate_schema(self, value: Any) -> Any:
        if problem := schema_problem(value):
            raise serializers.ValidationError(problem)
        return value


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
