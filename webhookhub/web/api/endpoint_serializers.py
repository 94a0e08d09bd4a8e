"""What ``/api/v1/endpoints/`` reads and writes: the endpoint (auth values and custom header values are
write-only: reads show a mask), its scheduling and stats, and the bodies of its test and replay actions."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.models import DeliveryStatus
from deliveries.preview import DEFAULT_LIMIT, MAX_LIMIT
from deliveries.selectors import scheduling_state
from deliveries.services.actions import REPLAYABLE_STATUSES
from ground.crypto import mask
from subscriptions.models import AuthType, Endpoint, PayloadFormat, Verification
from subscriptions.payloads import MAX_SHAPE_CHARS, heymarket_webhook_id
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
    verification_token = serializers.SerializerMethodField(
        help_text="Heymarket only: the token its receivers find in the body, masked (answered in full once, when "
        "it is issued)."
    )
    heymarket_webhook_id = serializers.SerializerMethodField(
        help_text='Heymarket only: the number its bodies carry as "id" (the webhook configuration id).'
    )

    def get_verification_token(self, endpoint: Endpoint) -> str | None:
        heymarket = endpoint.payload_format == PayloadFormat.HEYMARKET
        return mask(endpoint.verification_token) if heymarket and endpoint.verification_token else None

    def get_heymarket_webhook_id(self, endpoint: Endpoint) -> int | None:
        return heymarket_webhook_id(endpoint.pk) if endpoint.payload_format == PayloadFormat.HEYMARKET else None

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
            "payload_format",
            "payload_shape",
            "verification",
            "verification_token",
            "heymarket_webhook_id",
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
    payload_format = serializers.ChoiceField(
        choices=PayloadFormat.choices,
        required=False,
        help_text="The body it receives: standard (default), a preset (heymarket, heyy, customertext) or custom. "
        "A change applies to events published after it.",
    )
    payload_shape = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_SHAPE_CHARS,
        help_text="custom only: a JMESPath expression over {id, type, timestamp, tenant_id, data} that gives a JSON "
        "object, e.g. {event: type, payload: data}.",
    )
    verification = serializers.ChoiceField(
        choices=Verification.choices,
        required=False,
        help_text="signature (Standard Webhooks headers), token (Heymarket's verification token in the body) or "
        "both; default: both for heymarket, signature otherwise.",
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


class VerificationTokenSerializer(serializers.Serializer):
    verification_token = serializers.CharField(help_text="Answered this once; reads show a mask.")


class PreviewRequestSerializer(serializers.Serializer):
    """How many of the latest events, and optionally settings to try instead of the saved ones."""

    limit = serializers.IntegerField(required=False, default=DEFAULT_LIMIT, min_value=1, max_value=MAX_LIMIT)
    payload_format = serializers.ChoiceField(choices=PayloadFormat.choices, required=False)
    payload_shape = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_SHAPE_CHARS
    )
    filter = serializers.DictField(required=False, allow_null=True)


class PreviewItemSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    created_at = serializers.DateTimeField()
    would_send = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why it would not be sent (the filter, the shape, a disabled endpoint).")
    body = serializers.CharField(
        allow_null=True, help_text="The exact text that would be sent (a Heymarket token masked); null: no body."
    )
    headers = serializers.DictField(child=serializers.CharField(), help_text="Secrets masked.")


class PreviewSerializer(serializers.Serializer):
    results = PreviewItemSerializer(many=True)


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
