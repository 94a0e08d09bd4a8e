"""``/api/v1/events/``: publish events (the ingestion API) and read them with their deliveries."""

import django_filters
from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from deliveries.models import Delivery
from deliveries.services.batch_publishing import MAX_BATCH, BatchRefused, publish_many
from deliveries.services.publishing import publish
from events.exceptions import InvalidPayload, PayloadTooLarge, PublishError, SchemaViolation, UnknownEventType
from events.models import Event, EventSource
from events.ordering import MAX_LENGTH, checked_key
from webhookhub.web.api.deliveries import DeliverySerializer
from webhookhub.web.api.errors import PayloadTooLargeError
from webhookhub.web.api.filters import UtcDateTimeFilter
from webhookhub.web.api.scoping import TenantScopedMixin
from webhookhub.web.api.strict import StrictFieldsMixin
from webhookhub.web.api.throttling import ApiKeyRateThrottle, PublishRateThrottle


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="event_type_id")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering_key = django_filters.CharFilter(field_name="ordering_key")

    class Meta:
        model = Event
        fields = ["type", "since", "until", "source", "ordering_key"]


class EventSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="event_type_id")

    class Meta:
        model = Event
        fields = ["id", "type", "data", "occurred_at", "created_at", "idempotency_key", "source", "ordering_key"]
        read_only_fields = fields


class DeliveryEventSerializer(EventSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "deliveries"]
        read_only_fields = fields


class OrderingKeyField(serializers.CharField):
    """A string as ``events.ordering.checked_key`` takes it (a number is refused, not turned into text)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(trim_whitespace=False, max_length=MAX_LENGTH, **kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return checked_key(super().to_internal_value(data))
        except InvalidPayload as exc:
            raise serializers.ValidationError(str(exc)) from exc


class PublishSerializer(StrictFieldsMixin, serializers.Serializer):
    """An event to publish; only its top-level keys are checked (``data`` is the event's own, free-form)."""

    read_only_names = frozenset({"id", "occurred_at", "created_at", "source", "deliveries"})
    unknown_field_hints = {"idempotency_key": "give it in the Idempotency-Key header (or use /events/batch/)."}

    type = serializers.CharField(max_length=100)
    data = serializers.DictField(help_text="The event data: a JSON object.")  # type: ignore[assignment]  # a field
    ordering_key = OrderingKeyField(
        required=False,
        help_text="Endpoints set to ordered receive the events of one key one at a time, in publish order. "
        "Without it, the type's key path may give one (message.*: data.chat_id; chat.*, contact.*: data.id).",
    )


class PublishedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event id (the webhook-id receivers see).")
    deliveries = serializers.IntegerField(help_text="Deliveries created for it.")


class BatchItemSerializer(PublishSerializer):
    idempotency_key = serializers.CharField(
        max_length=200, required=False, help_text="Per event: a repeated key gives the first event, writing nothing."
    )


class BatchPublishSerializer(StrictFieldsMixin, serializers.Serializer):
    events = serializers.ListField(child=BatchItemSerializer(), min_length=1, max_length=MAX_BATCH)
    all_or_nothing = serializers.BooleanField(
        default=True,
        help_text="true (default): one bad event refuses the batch (400, nothing written). "
        "false: the good events are published and each bad one gets its error.",
    )


class BatchItemResultSerializer(serializers.Serializer):
    id = serializers.CharField(required=False, help_text="The event id, when it was published (or already was).")
    deliveries = serializers.IntegerField(required=False, help_text="Its deliveries.")
    error = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Why this event was not published, by field (only when all_or_nothing is false).",
    )


class BatchPublishedSerializer(serializers.Serializer):
    results = BatchItemResultSerializer(many=True, help_text="One per event sent, in order.")


def _item_errors(error: PublishError) -> dict[str, list[str]]:
    """The field at fault and why; a schema violation, one line per broken rule (path and rule)."""
    if isinstance(error, SchemaViolation):
        return {"data": [str(violation) for violation in error.violations]}
    return {"type" if isinstance(error, UnknownEventType) else "data": [str(error)]}


class EventViewSet(
    TenantScopedMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Publish events (the ingestion API) and read them with their deliveries."""

    filterset_class = EventFilter

    def get_queryset(self):
        return self.scope(Event.objects.all())

    def get_serializer_class(self):
        return DeliveryEventSerializer if self.action == "retrieve" else EventSerializer

    def get_throttles(self):
        if self.action in ("create", "batch"):
            return [ApiKeyRateThrottle(), PublishRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=PublishSerializer,
        responses={202: PublishedSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def create(self, request):
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        idempotency_key = request.headers.get("Idempotency-Key") or None
        if idempotency_key is not None and len(idempotency_key) > 200:
            raise serializers.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        try:
            event = publish(
                tenant=self.tenant_for_write(),
                type=serializer.validated_data["type"],
                data=serializer.validated_data["data"],
                idempotency_key=idempotency_key,
                source=EventSource.API,
                ordering_key=serializer.validated_data.get("ordering_key"),
            )
        except PayloadTooLarge as exc:
            raise PayloadTooLargeError(str(exc)) from exc
        except PublishError as exc:
            raise serializers.ValidationError(_item_errors(exc)) from exc
        return Response({"id": event.id, "deliveries": event.deliveries.count()}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=BatchPublishSerializer,
        responses={202: BatchPublishedSerializer},
        description=f"Publish up to {MAX_BATCH} events in one transaction. All or nothing unless `all_or_nothing` "
        "is false: a bad event answers 400 with its errors at its index under `events`, and nothing is written.",
    )
    @action(detail=False, methods=["post"])
    def batch(self, request):
        serializer = BatchPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = [dict(item) for item in serializer.validated_data["events"]]
        try:
            results = publish_many(
                tenant=self.tenant_for_write(),
                events=items,
                partial=not serializer.validated_data["all_or_nothing"],
                source=EventSource.API,
            )
        except BatchRefused as refused:
            errors = [_item_errors(refused.errors[i]) if i in refused.errors else {} for i in range(len(items))]
            raise serializers.ValidationError({"events": errors}) from refused
        counts = dict(
            Delivery.objects.filter(event_id__in=[r.event.pk for r in results if r.event is not None])
            .values_list("event_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        body = [
            {"error": _item_errors(result.error)}
            if result.error is not None or result.event is None
            else {"id": result.event.pk, "deliveries": counts.get(result.event.pk, 0)}
            for result in results
        ]
        return Response({"results": body}, status=status.HTTP_202_ACCEPTED)
