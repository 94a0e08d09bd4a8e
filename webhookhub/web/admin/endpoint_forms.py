"""The endpoint admin's forms: the endpoint itself (catalog multi-select, write-only auth and headers, the payload
format, the signature scheme, mutual TLS with a write-only key, the services' validation) and the choice of a test
event's payload."""

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from events.catalog import TEST_EVENT_TYPE
from events.models import EventType
from ground.conf import setting
from ground.crypto import mask
from ground.model_fields import concrete_field
from subscriptions import validation
from subscriptions.certificates import check_tls
from subscriptions.models import (
    ALL_EVENT_TYPES,
    AuthType,
    Endpoint,
    OAuth2ClientAuth,
    PayloadFormat,
    SignatureScheme,
    Verification,
)
from subscriptions.payloads import MAX_SHAPE_CHARS
from subscriptions.services import refuse_enabling
from webhookhub.web.admin.fields import JSONTextField
from webhookhub.web.payload_pages import MONOSPACE
from webhookhub.web.retry_schedule_text import (
    NO_RETRIES,
    parse_retry_schedule,
    retry_schedule_text,
    seconds_text,
)

_SECRET_INPUT = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
# form field -> (auth type, key in Endpoint.auth)
AUTH_INPUTS = {
    "auth_token": (AuthType.BEARER, "token"),
    "auth_header": (AuthType.API_KEY, "header"),
    "auth_value": (AuthType.API_KEY, "value"),
    "auth_username": (AuthType.BASIC, "username"),
    "auth_password": (AuthType.BASIC, "password"),
    "auth_token_url": (AuthType.OAUTH2, "token_url"),
    "auth_client_id": (AuthType.OAUTH2, "client_id"),
    "auth_client_secret": (AuthType.OAUTH2, "client_secret"),
    "auth_scope": (AuthType.OAUTH2, "scope"),
    "auth_audience": (AuthType.OAUTH2, "audience"),
    "auth_client_auth": (AuthType.OAUTH2, "client_auth"),
}
# Shown again as stored; the others are secrets: a mask in the help text, blank keeps them.
_PLAIN = {
    "auth_header",
    "auth_username",
    "auth_token_url",
    "auth_client_id",
    "auth_scope",
    "auth_audience",
    "auth_client_auth",
}
# Optional: blank removes them (the others, blank keeps what is stored).
_CLEARABLE = {"auth_scope", "auth_audience"}
ENABLE_WITH_BUTTONS = (
    'This endpoint is disabled: enable it with the "Enable (after a test event)" button at the top of this page, '
    "which sends it a test event first and enables it only if it answers 2xx, or with "
    '"Enable without testing (force)". Ticking this box does not enable it.'
)
# service error key -> form field
_ERROR_FIELDS = {"auth": "auth_type", "custom_headers": "custom_headers_text"}
_PEM = {"rows": 4, "cols": 66, **MONOSPACE}


class WriteOnlyTextarea(forms.Textarea):
    """A text area that never renders a value, the stored one or the one just typed (as a PasswordInput
    without ``render_value``): a private key goes in and never comes back into a page."""

    def format_value(self, value: Any) -> None:
        return None


def _parse_headers(text: str) -> dict[str, str]:
    headers = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValidationError(f"Line {number}: write 'Name: value'.")
        headers[name.strip()] = value.strip()
    return headers


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https", widget=forms.URLInput(attrs={"size": 80}))
    event_types = forms.MultipleChoiceField(
        widget=forms.SelectMultiple(attrs={"size": 12}), help_text="Hold Ctrl/Cmd to pick several."
    )
    auth_type = forms.ChoiceField(choices=AuthType.choices, initial=AuthType.NONE)
    auth_token = forms.CharField(required=False, widget=_SECRET_INPUT, label="Bearer token")
    auth_header = forms.CharField(required=False, label="API key header name", help_text="e.g. X-API-Key")
    auth_value = forms.CharField(required=False, widget=_SECRET_INPUT, label="API key value")
    auth_username = forms.CharField(required=False, label="Basic auth user")
    auth_password = forms.CharField(required=False, widget=_SECRET_INPUT, label="Basic auth password")
    auth_token_url = forms.CharField(
        required=False,
        label="OAuth2 token URL",
        widget=forms.URLInput(attrs={"size": 80}),
        help_text="Where the sender asks for a token (client credentials grant); the same address rules as the "
        "endpoint URL apply.",
    )
    auth_client_id = forms.CharField(required=False, label="OAuth2 client id")
    auth_client_secret = forms.CharField(required=False, widget=_SECRET_INPUT, label="OAuth2 client secret")
    auth_scope = forms.CharField(required=False, label="OAuth2 scope", help_text="Optional, e.g. webhooks:write")
    auth_audience = forms.CharField(required=False, label="OAuth2 audience", help_text="Optional.")
    auth_client_auth = forms.ChoiceField(
        required=False,
        choices=OAuth2ClientAuth.choices,
        initial=OAuth2ClientAuth.BASIC,
        label="OAuth2 client authentication",
        help_text="How the client id and secret go to the token endpoint.",
    )
    signature_scheme = forms.ChoiceField(
        required=False,
        choices=SignatureScheme.choices,
        initial=SignatureScheme.V1,
        help_text="What webhook-signature carries: v1 signs with the shared secret (HMAC-SHA256); v1a with the "
        "endpoint's Ed25519 key, which receivers verify with the public key below alone; both sends the two (for a "
        "receiver moving from one to the other).",
    )
    tls_client_certificate = forms.CharField(
        required=False,
        label="TLS client certificate",
        widget=forms.Textarea(attrs=_PEM),
        help_text="PEM (-----BEGIN CERTIFICATE-----), the leaf first, then any intermediates; presented to an "
        "https:// endpoint that asks for one. Clear it to stop presenting one (its key is removed too).",
    )
    tls_client_key = forms.CharField(
        required=False,
        strip=False,
        label="TLS client key",
        widget=WriteOnlyTextarea(attrs={**_PEM, "autocomplete": "off"}),
        help_text="PEM, unencrypted (-----BEGIN PRIVATE KEY-----); stored encrypted and never shown again.",
    )
    tls_ca_certificate = forms.CharField(
        required=False,
        label="TLS CA certificate",
        widget=forms.Textarea(attrs=_PEM),
        help_text="Optional PEM: a private CA that alone verifies this endpoint's server certificate (instead of "
        "the system's CAs). The server certificate is always verified.",
    )
    custom_headers_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Custom headers",
        help_text="One 'Name: value' per line. Leave blank to keep the stored headers.",
    )
    clear_custom_headers = forms.BooleanField(required=False, label="Remove all custom headers")
    payload_format = forms.ChoiceField(
        required=False,
        choices=PayloadFormat.choices,
        initial=PayloadFormat.STANDARD,
        help_text="The body it receives: the standard envelope, a preset reproducing another platform's documented "
        "payload, or a custom shape. A change applies to events published after it.",
    )
    payload_shape = forms.CharField(
        required=False,
        strip=False,
        max_length=MAX_SHAPE_CHARS,
        widget=forms.Textarea(attrs={"rows": 4, "class": "payload-shape", **MONOSPACE}),
        help_text="Custom format only: a JMESPath expression over {id, type, timestamp, tenant_id, data} giving a "
        "JSON object, e.g. {event: type, payload: data}.",
    )
    retry_schedule = forms.CharField(
        required=False,
        label="Retry schedule",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    verification = forms.ChoiceField(
        required=False,
        choices=[("", "the format's default (both for Heymarket, signature otherwise)"), *Verification.choices],
        help_text="How the receiver checks the sender; the verification token in the body exists only for the "
        "Heymarket format.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "tenant",
            "name",
            "url",
            "description",
            "event_types",
            "enabled",
            "timeout_s",
            "retry_schedule",
            "auto_disable_after_seconds",
            "rate_limit_per_s",
            "max_in_flight",
            "adaptive_concurrency",
            "filter",
            "ordered",
            "payload_format",
            "payload_shape",
            "verification",
            "signature_scheme",
        ]
        field_classes = {"filter": JSONTextField}
        labels = {"ordered": "Ordered delivery per key"}
        help_texts = {
            "ordered": "Events with the same ordering key are sent one at a time, in publish order: each waits until "
            "the one before it succeeded, failed for good or was cancelled (a failing one holds its key back through "
            "all its retries). Events without a key are never held back."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = EventType.objects.filter(archived=False).values_list("name", flat=True)
        event_types = cast(forms.MultipleChoiceField, self.fields["event_types"])
        event_types.choices = [(ALL_EVENT_TYPES, "* (every event type)")] + [(n, n) for n in names]
        self.fields["max_in_flight"].required = False  # blank keeps the stored (or default) limit
        self._explain_delivery_policy()
        endpoint = self.instance
        if endpoint.pk:
            self.initial["auth_type"] = endpoint.auth_type
            stored = endpoint.auth or {}
            for field, (auth_type, key) in AUTH_INPUTS.items():
                if endpoint.auth_type == auth_type and key in stored:
                    if field in _PLAIN:
                        self.initial[field] = stored[key]
                    else:
                        self.fields[field].help_text = f"Stored: {mask(stored[key])}. Leave blank to keep it."
            self._show_stored_tls(endpoint)
            if endpoint.custom_headers:
                shown = ", ".join(f"{name}: {mask(value)}" for name, value in endpoint.custom_headers.items())
                self.fields["custom_headers_text"].help_text = f"Stored: {shown}. Leave blank to keep them."
            if not endpoint.enabled:
                self.fields["enabled"].help_text = ENABLE_WITH_BUTTONS

    def _show_stored_tls(self, endpoint: Endpoint) -> None:
        """The certificates as stored (they are public); of the key, only whether there is one."""
        self.initial["tls_client_certificate"] = endpoint.tls_client_certificate
        self.initial["tls_ca_certificate"] = endpoint.tls_ca_certificate
        if endpoint.tls_client_key:
            self.fields["tls_client_key"].help_text = (
                "A key is stored (encrypted; never shown). Leave blank to keep it; paste a new one with a new "
                "certificate. Clearing the certificate removes it."
            )

    def _explain_delivery_policy(self) -> None:
        """Help texts with the operator's schedules and bounds as they are now; the stored schedule as text."""
        names = validation.retry_schedule_names()
        named = "; ".join(f"{name}: {retry_schedule_text(setting('RETRY_SCHEDULES')[name])}" for name in names)
        low, high = seconds_text(setting("RETRY_DELAY_MIN_SECONDS")), seconds_text(setting("RETRY_DELAY_MAX_SECONDS"))
        default = retry_schedule_text(setting("RETRY_SCHEDULE")) or NO_RETRIES
        self.fields["retry_schedule"].help_text = (
            "Seconds to wait after each failed attempt, separated by commas (10, 60, 600, or 10s, 5m, 2h, 1d), at "
            f"most {setting('RETRY_SCHEDULE_MAX_RETRIES')} retries of {low} s to {high} s; or a schedule's name "
            f"({named or 'none defined'}); or none for a single attempt. Blank: the deployment's ({default}). "
            "A change applies to the next retry of deliveries already waiting too."
        )
        self.initial["retry_schedule"] = retry_schedule_text(self.instance.retry_schedule)
        low, high = setting("AUTO_DISABLE_MIN_SECONDS"), setting("AUTO_DISABLE_MAX_SECONDS")
        self.fields["auto_disable_after_seconds"].help_text = (
            f"Disabled after failing this long without a success: {low} to {high} seconds. Blank: the "
            f"deployment's period ({seconds_text(setting('AUTO_DISABLE_AFTER_SECONDS'))} s)."
        )

    def clean_retry_schedule(self) -> list[float] | str | None:
        return parse_retry_schedule(self.cleaned_data.get("retry_schedule") or "", validation.retry_schedule_names())

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())  # a ModelForm's clean() returns cleaned_data
        endpoint = self.instance
        if endpoint.pk and cleaned.get("enabled"):
            try:
                refuse_enabling(endpoint, enabled=True)  # the services' rule, said in the admin's words
            except ValidationError:
                self.add_error("enabled", ENABLE_WITH_BUTTONS)
        try:
            if "url" in cleaned:
                cleaned["url"] = validation.clean_url(cleaned["url"])
            if "event_types" in cleaned:
                cleaned["event_types"] = validation.clean_event_types(cleaned["event_types"])
            auth_type = cleaned.get("auth_type", AuthType.NONE)
            cleaned["auth"] = validation.clean_auth(auth_type, self._merged_auth(auth_type, cleaned))
            if cleaned.get("clear_custom_headers"):
                cleaned["custom_headers"] = {}
            elif cleaned.get("custom_headers_text"):
                try:
                    headers = _parse_headers(cleaned["custom_headers_text"])
                except ValidationError as exc:
                    raise ValidationError({"custom_headers": exc.messages}) from exc
                cleaned["custom_headers"] = validation.clean_custom_headers(headers)
            else:
                cleaned["custom_headers"] = endpoint.custom_headers if endpoint.pk else {}
            validation.check_headers_together(cleaned["custom_headers"] or {}, auth_type, cleaned["auth"])
            cleaned["timeout_s"] = validation.clean_timeout(cleaned.get("timeout_s"))
            cleaned["rate_limit_per_s"] = validation.clean_rate_limit(cleaned.get("rate_limit_per_s"))
            limit = cleaned.get("max_in_flight")
            stored = endpoint.max_in_flight if endpoint.pk else concrete_field(Endpoint, "max_in_flight").default
            cleaned["max_in_flight"] = validation.clean_max_in_flight(stored if limit is None else limit)
            cleaned["filter"] = validation.clean_filter(cleaned.get("filter"))
        except ValidationError as exc:
            self._add_service_errors(exc)
        for check in (self._clean_payload, self._clean_signing, self._clean_tls):
            try:
                check(cleaned)
            except ValidationError as exc:
                self._add_service_errors(exc)
        self._clean_delivery_policy(cleaned)
        return cleaned

    def _merged_auth(self, auth_type: str, cleaned: dict[str, Any]) -> dict[str, Any]:
        """The auth the form means: the stored values of the same type, with what was typed over them; a secret
        left blank keeps the stored one, an optional plain value left blank is removed."""
        endpoint = self.instance
        kept = dict((endpoint.auth or {}) if endpoint.pk and endpoint.auth_type == auth_type else {})
        for field, (kind, key) in AUTH_INPUTS.items():
            if kind != auth_type:
                continue
            value = cleaned.get(field)
            if value:
                kept[key] = value
            elif field in _CLEARABLE:
                kept.pop(key, None)
        return kept

    def _clean_signing(self, cleaned: dict[str, Any]) -> None:
        """Blank keeps the stored scheme (a new endpoint's is the model's default, v1); a verification that sends
        no signature takes only the default."""
        scheme = cleaned.get("signature_scheme") or self.instance.signature_scheme
        cleaned["signature_scheme"] = validation.clean_signature_scheme(scheme)
        validation.check_signing(cleaned.get("verification") or "", cleaned["signature_scheme"])

    def _clean_tls(self, cleaned: dict[str, Any]) -> None:
        """The certificate, key and CA as the service will check them with the URL: a blank key keeps the
        stored one while there is a certificate; no certificate, no key."""
        if "url" not in cleaned:  # refused already: the TLS settings are checked against a valid URL
            return
        endpoint = self.instance
        certificate = cleaned.get("tls_client_certificate") or ""
        key = cleaned.get("tls_client_key") or ""
        if not key.strip():
            key = (endpoint.tls_client_key if endpoint.pk else None) if certificate.strip() else None
            cleaned["tls_client_key"] = None  # nothing typed: the service keeps or drops the stored key
        tls = check_tls(
            url=cleaned["url"],
            certificate=certificate,
            key=key,
            ca_certificate=cleaned.get("tls_ca_certificate") or "",
            now=timezone.now(),
            stored_certificate=endpoint.tls_client_certificate if endpoint.pk else "",
        )
        cleaned["tls_client_certificate"], cleaned["tls_ca_certificate"] = tls.certificate, tls.ca_certificate

    def _clean_delivery_policy(self, cleaned: dict[str, Any]) -> None:
        """The retry schedule and auto-disable period, each checked on its own (both errors show at once)."""
        checks = (
            ("retry_schedule", validation.clean_retry_schedule),
            ("auto_disable_after_seconds", validation.clean_auto_disable_after),
        )
        for field, check in checks:
            if field not in cleaned:  # the field's own cleaning refused it already
                continue
            try:
                cleaned[field] = check(cleaned[field])
            except ValidationError as exc:
                self._add_service_errors(exc)
        cleaned["adaptive_concurrency"] = bool(cleaned.get("adaptive_concurrency"))

    def _add_service_errors(self, error: ValidationError) -> None:
        for key, messages in error.message_dict.items():
            self.add_error(_ERROR_FIELDS.get(key, key if key in self.fields else None), messages)

    def _clean_payload(self, cleaned: dict[str, Any]) -> None:
        """The format, shape and verification as the service will save them: an empty format keeps the stored
        one; a shape the chosen format does not use is dropped unless typed in; the verification left as stored
        (or empty) becomes the new format's default."""
        endpoint = self.instance
        stored = PayloadFormat.STANDARD if endpoint._state.adding else endpoint.payload_format
        payload_format = cleaned.get("payload_format") or stored
        shape = cleaned.get("payload_shape") or ""
        if payload_format != PayloadFormat.CUSTOM and "payload_shape" not in self.changed_data:
            shape = ""
        verification = cleaned.get("verification") or ""
        switched = not endpoint._state.adding and payload_format != endpoint.payload_format
        if not verification or (switched and "verification" not in self.changed_data):
            verification = validation.default_verification(payload_format)
        cleaned.update(payload_format=payload_format, payload_shape=shape, verification=verification)
        validation.clean_payload(payload_format, shape, verification, cleaned.get("event_types") or [])

    def service_kwargs(self) -> dict[str, Any]:
        """What create_endpoint / update_endpoint take, from the cleaned form."""
        data = self.cleaned_data
        return {
            "url": data["url"],
            "event_types": data["event_types"],
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "auth_type": data["auth_type"],
            "auth": data["auth"],
            "custom_headers": data["custom_headers"],
            "timeout_s": data["timeout_s"],
            "rate_limit_per_s": data["rate_limit_per_s"],
            "max_in_flight": data["max_in_flight"],
            "filter": data["filter"],
            "enabled": data.get("enabled", True),
            "ordered": data.get("ordered", False),
            "payload_format": data["payload_format"],
            "payload_shape": data["payload_shape"],
            "verification": data["verification"],
            "retry_schedule": data["retry_schedule"],
            "auto_disable_after_seconds": data["auto_disable_after_seconds"],
            "adaptive_concurrency": data["adaptive_concurrency"],
            "signature_scheme": data["signature_scheme"],
            "tls_client_certificate": data["tls_client_certificate"],
            "tls_ca_certificate": data["tls_ca_certificate"],
            **({"tls_client_key": data["tls_client_key"]} if data.get("tls_client_key") else {}),
        }


class TestEventForm(forms.Form):
    example = forms.ChoiceField(
        label="Payload", help_text="The data of a webhook.test event, or another type's example."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = EventType.objects.filter(archived=False).values_list("name", flat=True)
        self.fields["example"].choices = [(name, f"example of {name}") for name in names]
        self.fields["example"].initial = TEST_EVENT_TYPE
