from dataclasses import asdict

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.errors import PayloadTooLargeError
from accounts.api.scoping import TenantScopedMixin
from accounts.api.throttling import ApiKeyRateThrottle, PublishRateThrottle
from deliveries.models import Delivery
from deliveries.services.actions import replay, resend, send_test_event
from deliveries.services.publishing import publish
from deliveries.services.scheduling import scheduling_state
from deliveries.services.stats import endpoint_stats
from deliveries.services.windows import DEFAULT_WINDOW, WINDOWS
from events.api.serializers import EventSerializer
from events.api.views import EventReadViewSet
from events.exceptions import PayloadTooLarge, PublishError, UnknownEventType
from events.models import EventSource
from subscriptions.api.views import EndpointSettingsViewSet
from webhookhub.web.api.filters import DeliveryFilter
from webhookhub.web.api.serializers import (
    DeliveryDetailSerializer,
    DeliverySerializer,
    EndpointDetailSerializer,
    PublishedSerializer,
    PublishSerializer,
    ReplayResultSerializer,
    ReplaySerializer,
    StatsSerializer,
    TestEventSerializer,
)


class DeliveryEventSerializer(EventSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "deliveries"]
        read_only_fields = fields


class EventViewSet(EventReadViewSet, mixins.CreateModelMixin):
    """Publish events (the ingestion API) and read them with their deliveries."""

    def get_serializer_class(self):
        return DeliveryEventSerializer if self.action == "retrieve" else EventSerializer

    def get_throttles(self):
        if self.action == "create":
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
            )
        except PayloadTooLarge as exc:
            raise PayloadTooLargeError(str(exc)) from exc
        except PublishError as exc:
            field = "type" if isinstance(exc, UnknownEventType) else "data"
            raise serializers.ValidationError({field: [str(exc)]}) from exc
        return Response({"id": event.id, "deliveries": event.deliveries.count()}, status=status.HTTP_202_ACCEPTED)


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
        delivery = resend(self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EndpointViewSet(EndpointSettingsViewSet):
    """Endpoints, with the actions that touch deliveries: test, replay, stats; reading one shows its scheduling."""

    @extend_schema(responses={200: EndpointDetailSerializer})
    def retrieve(self, request, pk=None):
        return Response(EndpointDetailSerializer(self.get_object()).data)

    @extend_schema(request=TestEventSerializer, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        serializer = TestEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            delivery = send_test_event(endpoint=self.get_object(), data=serializer.validated_data.get("data"))
        except PublishError as exc:
            raise serializers.ValidationError({"data": [str(exc)]}) from exc
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReplaySerializer, responses={200: ReplayResultSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        count = replay(
            endpoint=self.get_object(),
            statuses=sorted(data["status"]),
            since=data["since"],
            until=data["until"],
            dry_run=data["dry_run"],
        )
        return Response({"count": count, "dry_run": data["dry_run"]})

    @extend_schema(
        parameters=[OpenApiParameter("window", str, enum=list(WINDOWS), default=DEFAULT_WINDOW)],
        responses={200: StatsSerializer},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            raise DjangoValidationError({"window": f"Choose one of {', '.join(WINDOWS)}."})
        endpoint = self.get_object()
        now = timezone.now()
        stats = endpoint_stats(endpoint=endpoint, window=WINDOWS[window], now=now)
        scheduling = scheduling_state(endpoint, now=now)
        return Response(StatsSerializer({**asdict(stats), "scheduling": scheduling}).data)
