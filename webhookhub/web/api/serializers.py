from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.services.scheduling import scheduling_state
from subscriptions.api.serializers import EndpointSerializer
from subscriptions.models import Endpoint


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
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempts"]
        read_only_fields = fields


class PublishSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=100)
    data = serializers.DictField(help_text="The event data: a JSON object.")  # type: ignore[assignment]  # a field


class PublishedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event id (the webhook-id receivers see).")
    deliveries = serializers.IntegerField(help_text="Deliveries created for it.")


class ReplaySerializer(serializers.Serializer):
    status = serializers.MultipleChoiceField(
        choices=[DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED, DeliveryStatus.CANCELLED],
        default={DeliveryStatus.FAILED.value},
        help_text="Which deliveries to send again (default: failed).",
    )
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    dry_run = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "until must be after since."})
        return attrs


class ReplayResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    dry_run = serializers.BooleanField()


class TestEventSerializer(serializers.Serializer):
    data = serializers.DictField(required=False, help_text="Defaults to the catalog's example.")  # type: ignore[assignment]


class SchedulingSerializer(serializers.Serializer):
    """The endpoint's scheduling now (read-only)."""

    leased = serializers.IntegerField(
        help_text="Deliveries a worker has taken to send now: in flight (at most max_in_flight) or next in line."
    )
    pending = serializers.IntegerField(help_text="Deliveries waiting: due now or retrying later.")
    max_in_flight = serializers.IntegerField()
    rate_limit_per_s = serializers.IntegerField(allow_null=True)
    paused_until = serializers.DateTimeField(allow_null=True, help_text="Set while a Retry-After is in force.")
    pause_reason = serializers.CharField()
    circuit_open_since = serializers.DateTimeField(allow_null=True, help_text="Set while the circuit is open.")
    next_probe_at = serializers.DateTimeField(allow_null=True)
    consecutive_failures = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """The endpoint's numbers as the dashboard shows them (both read the same rollups)."""

    window_seconds = serializers.IntegerField()
    since = serializers.DateTimeField(
        help_text="Where the window starts: windows are read in whole rollup buckets (five minutes for 1h, "
        "an hour for longer ones), so this is up to one bucket before now minus the window."
    )
    attempts = serializers.IntegerField()
    by_outcome = serializers.DictField(child=serializers.IntegerField())
    success_rate = serializers.FloatField(allow_null=True, help_text="Attempts that succeeded, of all attempts.")
    latency_p50_ms = serializers.IntegerField(
        allow_null=True,
        help_text="Of attempts that got a response; estimated from the latency histogram, linearly within a bucket.",
    )
    latency_p95_ms = serializers.IntegerField(allow_null=True, help_text="As latency_p50_ms.")
    pending_deliveries = serializers.IntegerField()
    failed_deliveries = serializers.IntegerField(help_text="Deliveries created since the window's start that failed.")
    scheduling = SchedulingSerializer()


class EndpointDetailSerializer(EndpointSerializer):
    """An endpoint with its scheduling state (read-only)."""

    scheduling = serializers.SerializerMethodField()

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "scheduling"]
        read_only_fields = fields

    @extend_schema_field(SchedulingSerializer)
    def get_scheduling(self, endpoint: Endpoint) -> dict:
        return SchedulingSerializer(scheduling_state(endpoint, now=timezone.now())).data
