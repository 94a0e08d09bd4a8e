"""What ``/api/v1/endpoints/`` reads and writes: the endpoint (auth values and custom header values are
write-only: reads show a mask), its scheduling and stats, and the bodies of its test and replay actions."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.models import DeliveryStatus
from deliveries.selectors import scheduling_state
from deliveries.services.actions import REPLAYABLE_STATUSES
from ground.crypto import mask
from subscriptions.models import AuthType, Endpoint
from subscriptions.validation import MAX_IN_FLIGHT, MAX_RATE_LIMIT_PER_S

AUTH_VALUE_KEYS = {
    AuthType.NONE: (),
    AuthType.BEARER: ("token",),
    AuthType.API_KEY: ("header", "value"),
    AuthType.BASIC: ("username", "password"),
}
_PLAIN = {"header", "username"}  # shown as they are: not secret


class AuthSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AuthType.choices)
    token = serializers.CharField(required=False, write_only=True, help_text="bearer")
    header = serializers.CharField(required=False, help_text="api_key: the header name")
    value = serializers.CharField(required=False, write_only=True, help_text="api_key: the header value")
    username = serializers.CharField(required=False, help_text="basic")
    password = serializers.CharField(required=False, write_only=True, help_text="basic")


@extend_schema_field(
    {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": list(AuthType.values)}},
        "additionalProperties": {"type": "string"},
        "example": {"type": "bearer", "token": "****k3y9"},
    }
)
class MaskedAuthField(serializers.Field):
    def to_representation(self, endpoint: Endpoint) -> dict[str, str]:
        values = endpoint.auth or {}
        shown = {
            key: values.get(key, "") if key in _PLAIN else mask(values.get(key, ""))
            for key in AUTH_VALUE_KEYS[AuthType(endpoint.auth_type)]
        }
        return {"type": endpoint.auth_type, **shown}


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}, "example": {"X-Env": "****prod"}})
class MaskedHeadersField(serializers.Field):
    def to_representation(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {name: mask(value) for name, value in (headers or {}).items()}


class EndpointSerializer(serializers.ModelSerializer):
    """What is read back: secrets masked."""

    auth = MaskedAuthField(source="*", read_only=True)
    custom_headers = MaskedHeadersField(read_only=True)

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "name",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "auth",
            "custom_headers",
            "timeout_s",
            "rate_limit_per_s",
            "max_in_flight",
            "ordered",
            "filter",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointWriteSerializer(serializers.Serializer):
    """What may be written. Validation of URLs, headers and auth is the service's (errors name the field)."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    url = serializers.CharField(max_length=2000)
    description = serializers.CharField(required=False, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(), required=False, help_text='["*"] = every type')
    enabled = serializers.BooleanField(required=False)
    auth = AuthSerializer(required=False, help_text="Write-only values; reads show a mask.")
    custom_headers = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    timeout_s = serializers.FloatField(required=False, allow_null=True)
    rate_limit_per_s = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_RATE_LIMIT_PER_S
    )
    max_in_flight = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_IN_FLIGHT, help_text="Requests open at once, across all workers."
    )
    filter = serializers.DictField(required=False, allow_null=True)
    ordered = serializers.BooleanField(
        required=False,
        help_text="Deliver the events of one ordering key one at a time, in publish order (default false).",
    )

    def to_service_kwargs(self) -> dict:
        data = dict(self.validated_data)
        if "auth" in data:
            auth = dict(data.pop("auth"))
            if "type" not in auth:
                raise serializers.ValidationError({"auth": ["Give the auth type with its values."]})
            data["auth_type"] = auth.pop("type")
            data["auth"] = auth or None
        return data


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_... (base64 of the key after the prefix)")


class CreatedEndpointSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret. Read it again at /secret/.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ReplaySerializer(serializers.Serializer):
    status = serializers.MultipleChoiceField(
        choices=list(REPLAYABLE_STATUSES),
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
    consecutive_failures = serializers.IntegerField(source="down_in_a_row")  # the API's name, kept


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
