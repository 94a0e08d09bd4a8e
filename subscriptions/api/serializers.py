"""Endpoint representations. Auth values and custom header values are write-only: reads show a mask."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

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
