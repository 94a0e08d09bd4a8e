"""``/api/v1/deliveries/``: deliveries of the tenant's events, newest first, each with its attempts."""

import django_filters
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.selectors import held_back_by
from deliveries.services.actions import resend
from webhookhub.web.api.filters import UtcDateTimeFilter
from webhookhub.web.api.scoping import TenantScopedMixin
from webhookhub.web.api.strict import refuse_any_body


class DeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.CharFilter(field_name="endpoint_id")
    event = django_filters.CharFilter(field_name="event_id")
    event_type = django_filters.CharFilter(field_name="event__event_type_id")
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    ordering_key = django_filters.CharFilter(field_name="ordering_key")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["endpoint", "event", "event_type", "status", "ordering_key", "since", "until"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "request_headers",
            "status_code",
            "response_headers",
            "response_body",
            "error",
            "outcome",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.event_type_id", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_type",
            "endpoint",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "completed_at",
            "ordering_key",
            "sequence",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = AttemptSerializer(many=True, read_only=True)
    waiting_behind = serializers.SerializerMethodField(
        help_text="A pending delivery of an ordered endpoint: the id of the delivery of its ordering key it waits "
        "for (the one before it, or the one being sent), else null."
    )

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "waiting_behind", "attempts"]
        read_only_fields = fields

    def get_waiting_behind(self, delivery: Delivery) -> int | None:
        ahead = held_back_by(delivery, now=timezone.now())
        return ahead.pk if ahead is not None else None


class DeliveryViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deliveries of the tenant's events, newest first, each with its attempts."""

    tenant_field = "endpoint__tenant"
    filterset_class = DeliveryFilter

    def get_queryset(self):
        queryset = Delivery.objects.select_related("event")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("attempts")
        return self.scope(queryset)

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        original = self.get_object()
        refuse_any_body(request)
        delivery = resend(original)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
