"""What ``/api/v1/endpoints/`` reads and writes: the endpoint (auth values, custom header values and the TLS client
key are write-only: reads show a mask, or whether a key is set), its scheduling and stats, its public signing keys,
and the bodies of its test and replay actions."""

import re
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deliveries.adaptive import START_LIMIT
from deliveries.models import DeliveryStatus
from deliveries.preview import DEFAULT_LIMIT, MAX_LIMIT
from deliveries.retry_policy import schedule_for
from deliveries.selectors import LIMITED_BY_WORDS, scheduling_state
from deliveries.services.actions import REPLAYABLE_STATUSES
from ground.conf import setting, webhookhub_settings
from ground.crypto import mask
from subscriptions.certificates import MAX_PEM_CHARS, expiry_warning
from subscriptions.models import AuthType, Endpoint, OAuth2ClientAuth, PayloadFormat, SignatureScheme, Verification
from subscriptions.payloads import MAX_SHAPE_CHARS, heymarket_webhook_id
from subscriptions.validation import MAX_IN_FLIGHT, MAX_RATE_LIMIT_PER_S, MAX_TIMEOUT_S, retry_schedule_names
from webhookhub.web.api.strict import StrictFieldsMixin

AUTH_VALUE_KEYS = {
    AuthType.NONE: (),
    AuthType.BEARER: ("token",),
    AuthType.API_KEY: ("header", "value"),
    AuthType.BASIC: ("username", "password"),
    AuthType.OAUTH2: ("token_url", "client_id", "client_secret", "scope", "audience", "client_auth"),
}
# Shown as they are: not secret. The others (token, value, password, client_secret) are masked.
_PLAIN = {"header", "username", "token_url", "client_id", "scope", "audience", "client_auth"}


class AuthSerializer(StrictFieldsMixin, serializers.Serializer):
    type = serializers.ChoiceField(choices=AuthType.choices)
    token = serializers.CharField(required=False, write_only=True, help_text="bearer")
    header = serializers.CharField(required=False, help_text="api_key: the header name")
    value = serializers.CharField(required=False, write_only=True, help_text="api_key: the header value")
    username = serializers.CharField(required=False, help_text="basic")
    password = serializers.CharField(required=False, write_only=True, help_text="basic")
    token_url = serializers.CharField(
        required=False,
        max_length=2000,
        help_text="oauth2: the token endpoint (client credentials grant); the address policy of endpoint URLs "
        "applies to it.",
    )
    client_id = serializers.CharField(required=False, help_text="oauth2")
    client_secret = serializers.CharField(required=False, write_only=True, help_text="oauth2")
    scope = serializers.CharField(required=False, allow_blank=True, help_text="oauth2, optional")
    audience = serializers.CharField(required=False, allow_blank=True, help_text="oauth2, optional")
    client_auth = serializers.ChoiceField(
        choices=OAuth2ClientAuth.choices,
        required=False,
        help_text="oauth2: how the client authenticates to the token endpoint: basic (client_secret_basic, the "
        "default) or post (client_secret_post).",
    )


_SHOWN_AUTH = {key: {"type": "string"} for keys in AUTH_VALUE_KEYS.values() for key in keys}


@extend_schema_field(
    {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": list(AuthType.values)}, **_SHOWN_AUTH},
        "required": ["type"],
        "additionalProperties": {"type": "string"},
        "description": "The auth type and its values: secrets (token, value, password, client_secret) masked, "
        "the others (header, username, token_url, client_id, scope, audience, client_auth) as they are.",
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


RETRY_SCHEDULE_HELP = (
    "Seconds to wait after each failed attempt (a list, e.g. [10, 60, 600]; [] for a single attempt), or the name "
    "of a schedule the operator defines; null: the deployment's. Each retry is jittered by the deployment's "
    "RETRY_JITTER; a 429/503 Retry-After overrides the wait. A change applies to the next retry decision of "
    "deliveries already pending too (one already past a shorter schedule's end fails at its next failure)."
)


class RetryScheduleField(serializers.Field):
    """A list of seconds or a schedule's name, taken as given: the service checks it against the operator's bounds
    and names (``subscriptions.validation.clean_retry_schedule``), so errors read the same everywhere."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class RetryScheduleFieldSchema(OpenApiSerializerFieldExtension):
    """The schema of a retry schedule, with the operator's bounds and names as they are when it is generated."""

    target_class = RetryScheduleField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        delays = {
            "type": "array",
            "items": {
                "type": "number",
                "minimum": setting("RETRY_DELAY_MIN_SECONDS"),
                "maximum": setting("RETRY_DELAY_MAX_SECONDS"),
            },
            "maxItems": setting("RETRY_SCHEDULE_MAX_RETRIES"),
            "description": "Seconds to wait after attempt 1, 2, ...",
        }
        named: dict[str, Any] = {"type": "string", "description": "An operator-defined schedule."}
        if names := retry_schedule_names():
            named["enum"] = names
        return {"oneOf": [delays, named], "example": [10, 60, 600]}


class EffectivePolicySerializer(serializers.Serializer):
    """The delivery policy in force: the endpoint's own settings, else the deployment's."""

    retry_schedule = serializers.ListField(
        child=serializers.FloatField(), help_text="Seconds to wait after each failed attempt."
    )
    timeout_s = serializers.FloatField(help_text="Total timeout of one request.")
    auto_disable_after_seconds = serializers.IntegerField(
        help_text="Disabled after failing this long without a success."
    )


def effective_policy(endpoint: Endpoint) -> dict[str, Any]:
    config = webhookhub_settings()
    return {
        "retry_schedule": list(schedule_for(endpoint.retry_schedule, config)),
        "timeout_s": endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"],
        "auto_disable_after_seconds": int(endpoint.auto_disable_after_seconds or config["AUTO_DISABLE_AFTER_SECONDS"]),
    }


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
    retry_schedule = RetryScheduleField(read_only=True, allow_null=True, help_text=RETRY_SCHEDULE_HELP)
    effective_policy = serializers.SerializerMethodField(
        help_text="The retry schedule (a name resolved to its seconds), timeout and auto-disable period in force."
    )
    tls_client_key_set = serializers.SerializerMethodField(
        help_text="Whether a TLS client key is stored (the key itself is write-only and never shown)."
    )
    tls_client_certificate_warning = serializers.SerializerMethodField(
        help_text="Set when the client certificate expires within 14 days (or has expired): upload its renewal."
    )

    @extend_schema_field(EffectivePolicySerializer)
    def get_effective_policy(self, endpoint: Endpoint) -> dict[str, Any]:
        return effective_policy(endpoint)

    def get_tls_client_key_set(self, endpoint: Endpoint) -> bool:
        return bool(endpoint.tls_client_key)

    def get_tls_client_certificate_warning(self, endpoint: Endpoint) -> str | None:
        return expiry_warning(endpoint.tls_client_certificate_expires_at, now=timezone.now())

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
            "adaptive_concurrency",
            "retry_schedule",
            "auto_disable_after_seconds",
            "effective_policy",
            "ordered",
            "filter",
            "payload_format",
            "payload_shape",
            "verification",
            "verification_token",
            "heymarket_webhook_id",
            "signature_scheme",
            "tls_client_certificate",
            "tls_client_key_set",
            "tls_ca_certificate",
            "tls_client_certificate_expires_at",
            "tls_client_certificate_warning",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "tls_client_certificate": {"help_text": "The mutual TLS client certificate (PEM)."},
            "tls_ca_certificate": {"help_text": "The private CA the server certificate is verified against (PEM)."},
            "tls_client_certificate_expires_at": {"help_text": "When the client certificate expires; null: none."},
        }


_PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


# The pattern (printable ASCII and line breaks) needs one character: "" is the other branch of the oneOf that
# drf-spectacular makes for a blank-able field with a pattern, and the two must not overlap.
@extend_schema_field({"type": "string", "pattern": r"^[\t\n\r\x20-\x7e]+$"})
class PemField(serializers.CharField):
    """PEM text (ASCII, RFC 7468), optional; "" or null for none. Parsing and matching are the service's (errors
    name the field). A certificate field refuses a private key pasted with the certificate: reads show it."""

    def __init__(self, *, certificate: bool = True, **kwargs: Any) -> None:
        self.certificate = certificate
        super().__init__(required=False, allow_blank=True, allow_null=True, max_length=MAX_PEM_CHARS, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not value.isascii():
            raise serializers.ValidationError("PEM is ASCII text: remove the characters that are not.")
        if self.certificate and _PRIVATE_KEY_BLOCK.search(value):
            raise serializers.ValidationError(
                "This holds a private key: give the certificate alone here, and its key in tls_client_key."
            )
        return value


class EndpointWriteSerializer(StrictFieldsMixin, serializers.Serializer):
    """What may be written. Validation of URLs, headers and auth is the service's (errors name the field)."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    url = serializers.CharField(max_length=2000)
    description = serializers.CharField(required=False, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(), required=False, help_text='["*"] = every type')
    enabled = serializers.BooleanField(required=False)
    auth = AuthSerializer(required=False, help_text="Write-only values; reads show a mask.")
    custom_headers = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    timeout_s = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text=f"Total timeout of one request, at most {MAX_TIMEOUT_S} s; null: the deployment's.",
    )
    retry_schedule = RetryScheduleField(required=False, allow_null=True, help_text=RETRY_SCHEDULE_HELP)
    auto_disable_after_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Disable the endpoint after it has failed this long without a success (the operator's bounds, "
        "by default 3600 to 2592000 s); null: the deployment's period.",
    )
    adaptive_concurrency = serializers.BooleanField(
        required=False,
        help_text="Adapt the requests open at once to the endpoint's answers, up to max_in_flight (default true); "
        "false: always up to max_in_flight.",
    )
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
    signature_scheme = serializers.ChoiceField(
        choices=SignatureScheme.choices,
        required=False,
        help_text="What webhook-signature carries: v1 (HMAC-SHA256 with the shared secret, the default), v1a "
        "(Ed25519: receivers verify with the public key of /public-key/ alone) or both. verification 'token' sends "
        "no signature: it takes only v1.",
    )
    tls_client_certificate = PemField(
        help_text="Mutual TLS: the client certificate presented to an https:// endpoint (PEM, the leaf first, then "
        "any intermediates); it must be valid now and match tls_client_key. A renewal of the same key needs no "
        'new key; "" removes the certificate and its key.'
    )
    tls_client_key = PemField(
        certificate=False,
        write_only=True,
        help_text="Mutual TLS: the private key of tls_client_certificate (PEM, unencrypted; stored encrypted). "
        "Write-only: reads show tls_client_key_set.",
    )
    tls_ca_certificate = PemField(
        help_text="A private CA (PEM) the endpoint's server certificate is verified against instead of the "
        'system\'s; needs an https:// URL. "" removes it.'
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

    def shown_only(self) -> set[str]:
        """What reads of an endpoint show: a body copied from a GET gets its read-only fields named as such."""
        return set(EndpointDetailSerializer.Meta.fields) | set(CreatedEndpointSerializer.Meta.fields)


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_... (base64 of the key after the prefix)")


class CreatedEndpointSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret. Read it again at /secret/.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class PublicKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        help_text="whpk_... : base64 of the raw 32-byte Ed25519 public key, as Standard Webhooks writes it."
    )


class SigningKeySerializer(PublicKeySerializer):
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="A rotated-out key signs until then (grace period); null for the primary."
    )


class PublicKeysSerializer(serializers.Serializer):
    """The public halves of the endpoint's live v1a keys; the private keys never leave the platform."""

    public_key = serializers.CharField(
        allow_null=True,
        help_text="The primary key, whpk_... (base64 of the raw 32-byte Ed25519 public key); null only for an "
        "endpoint that has none (rotate-signing-key/ makes one).",
    )
    keys = SigningKeySerializer(many=True, help_text="Every key v1a signatures are made with now, primary first.")


class VerificationTokenSerializer(serializers.Serializer):
    verification_token = serializers.CharField(help_text="Answered this once; reads show a mask.")


class PreviewRequestSerializer(StrictFieldsMixin, serializers.Serializer):
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


class ReplaySerializer(StrictFieldsMixin, serializers.Serializer):
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


class TestEventSerializer(StrictFieldsMixin, serializers.Serializer):
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
    adaptive_concurrency = serializers.BooleanField(
        source="adaptive", help_text="Whether the concurrency adapts to the answers, with max_in_flight as ceiling."
    )
    concurrency_limit = serializers.IntegerField(
        allow_null=True,
        help_text="Adaptive: requests let open at once now, as learnt from the answers; null: not learnt yet "
        f"(it starts at {START_LIMIT}).",
    )
    concurrency_limited_by = serializers.CharField(
        source="limited_by",
        help_text=f"What last cut the limit: one of {', '.join(LIMITED_BY_WORDS)}; empty when nothing holds it down.",
    )
    concurrency_limited_at = serializers.IntegerField(
        source="limited_at", allow_null=True, help_text="Requests open when that answer came."
    )
    concurrency = serializers.CharField(
        help_text='In words, e.g. "sending 6 at a time, limited by: 429s at 7" or "up to 8 at a time (fixed)".'
    )
    summary = serializers.CharField(
        help_text="All of it in one line: an open circuit or a pause first, then deliveries and concurrency."
    )


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


class EnableRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    """The body of ``POST /endpoints/{id}/enable/`` (optional)."""

    force = serializers.BooleanField(
        default=False,
        help_text="Enable without a test event. By default a disabled endpoint is first sent a webhook.test event "
        "and enabled only if it answers 2xx.",
    )


class EnableTestSerializer(serializers.Serializer):
    """The test event's one attempt, as the attempt log holds it."""

    status_code = serializers.IntegerField(allow_null=True, help_text="The HTTP status it answered; null: no answer.")
    error = serializers.CharField(help_text="Why it failed (no answer, a non-2xx status, the address policy...).")
    delivery_id = serializers.IntegerField(
        allow_null=True, help_text="The test's delivery in the log (GET /deliveries/{id}/); null: none was made."
    )


class EnableRefusedSerializer(serializers.Serializer):
    """409: the test event did not get a 2xx; the endpoint is unchanged (still disabled)."""

    detail = serializers.CharField()
    test = EnableTestSerializer()
