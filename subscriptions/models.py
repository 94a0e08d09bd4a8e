from django.conf import settings
from django.db import models

from accounts.models import Tenant
from ground.crypto import EncryptedJSONField
from ground.ids import new_id

ALL_EVENT_TYPES = "*"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNING_KEY_PREFIX = "whsk_"  # an ed25519 private key (Standard Webhooks); never leaves the platform
PUBLIC_KEY_PREFIX = "whpk_"  # its public key, for receivers


class AuthType(models.TextChoices):
    NONE = "none", "None"
    API_KEY = "api_key", "API key header"
    BEARER = "bearer", "Bearer token"
    BASIC = "basic", "Basic (user and password)"
    OAUTH2 = "oauth2", "OAuth2 client credentials"


class OAuth2ClientAuth(models.TextChoices):
    """How the sender authenticates to the token endpoint (RFC 6749 2.3.1)."""

    BASIC = "basic", "client_secret_basic (HTTP Basic)"
    POST = "post", "client_secret_post (in the form body)"


class SignatureScheme(models.TextChoices):
    """What ``webhook-signature`` carries (Standard Webhooks)."""

    V1 = "v1", "v1: HMAC-SHA256 with a shared secret"
    V1A = "v1a", "v1a: Ed25519, receivers hold only the public key"
    BOTH = "both", "Both v1 and v1a"


class PayloadFormat(models.TextChoices):
    """The body an endpoint receives (``subscriptions.payloads``)."""

    STANDARD = "standard", "Standard envelope"
    HEYMARKET = "heymarket", "Heymarket"
    HEYY = "heyy", "Heyy"
    CUSTOMERTEXT = "customertext", "CustomerText"
    CUSTOM = "custom", "Custom shape (JMESPath)"


class Verification(models.TextChoices):
    """How the receiver checks that a request comes from us."""

    SIGNATURE = "signature", "Standard Webhooks signature headers"
    TOKEN = "token", "Verification token in the body (Heymarket)"  # noqa: S105 - a choice, not a secret
    BOTH = "both", "Both (while a receiver moves over)"


def _endpoint_id() -> str:
    return new_id("ep")


class Endpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=_endpoint_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="endpoints")
    name = models.CharField(max_length=200, blank=True)
    url = models.URLField("URL", max_length=2000)
    description = models.TextField(blank=True)
    event_types = models.JSONField(default=list, help_text='Event type names, or ["*"] for every type.')
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.NONE)
    # {"header", "value"} | {"token"} | {"username", "password"}
    # | {"token_url", "client_id", "client_secret", "scope", "audience", "client_auth"}; encrypted at rest.
    auth = EncryptedJSONField(null=True, blank=True)
    # {header name: value}; encrypted at rest, values never shown again.
    custom_headers = EncryptedJSONField(null=True, blank=True)
    timeout_s = models.FloatField(
        "timeout (seconds)", null=True, blank=True, help_text="Total timeout; the deployment default when empty."
    )
    rate_limit_per_s = models.PositiveIntegerField(
        "rate limit (requests/s)",
        null=True,
        blank=True,
        help_text="Requests per second at most, across all workers; empty for no limit.",
    )
    max_in_flight = models.PositiveSmallIntegerField(
        default=8,
        help_text="Requests open at once at most, across all workers; with adaptive concurrency, the ceiling.",
    )
    adaptive_concurrency = models.BooleanField(
        default=True,
        help_text="Start with few requests open at once and add more while the endpoint answers fast; halve them "
        "on 429/503, timeouts, refused connections or answers much slower than usual. Off: always up to "
        "max_in_flight.",
    )
    # Its own delivery policy; empty: the deployment's (WEBHOOKHUB RETRY_SCHEDULE, AUTO_DISABLE_AFTER_SECONDS).
    retry_schedule = models.JSONField(
        null=True,
        blank=True,
        help_text="Seconds to wait after each failed attempt, e.g. [10, 60, 600], or the name of a schedule the "
        "operator defines; empty: the deployment's schedule.",
    )
    auto_disable_after_seconds = models.PositiveIntegerField(
        "auto-disable after (seconds)",
        null=True,
        blank=True,
        help_text="Disabled after failing this long without a success; empty: the deployment's period.",
    )
    filter = models.JSONField(
        null=True, blank=True, help_text='{"dotted.path.in.data": value or [allowed values]}; all must match.'
    )
    ordered = models.BooleanField(
        default=False,
        help_text="Events with the same ordering key are delivered one at a time, in publish order: each waits "
        "until the one before it succeeded, failed for good or was cancelled.",
    )
    payload_format = models.CharField(
        max_length=16,
        choices=PayloadFormat.choices,
        default=PayloadFormat.STANDARD,
        help_text="The body it receives: the standard envelope, a preset reproducing another platform's "
        "documented payload, or a custom shape. A change applies to events published after it.",
    )
    payload_shape = models.TextField(
        blank=True,
        help_text="For a custom shape: a JMESPath expression over {id, type, timestamp, tenant_id, data} "
        "giving a JSON object, e.g. {event: type, payload: data}.",
    )
    verification = models.CharField(
        max_length=16,
        choices=Verification.choices,
        default=Verification.SIGNATURE,
        help_text="How the receiver checks the sender; the verification token in the body exists only for "
        "the Heymarket format.",
    )
    # Heymarket's per-endpoint verification token (sent in the body); encrypted at rest, shown once.
    verification_token = EncryptedJSONField(null=True, blank=True)
    signature_scheme = models.CharField(
        max_length=8,
        choices=SignatureScheme.choices,
        default=SignatureScheme.V1,
        db_default=SignatureScheme.V1,
        help_text="v1 signs with the shared secret (HMAC); v1a with the endpoint's Ed25519 key, which receivers "
        "verify with its public key alone; both sends the two.",
    )
    # Mutual TLS: the client certificate (PEM, the chain after it) and its key presented to an https:// endpoint,
    # and a private CA its server certificate is verified against instead of the system's.
    tls_client_certificate = models.TextField("TLS client certificate", blank=True, default="", db_default="")
    tls_client_key = EncryptedJSONField("TLS client key", null=True, blank=True)  # PEM; write-only
    tls_ca_certificate = models.TextField("TLS CA certificate", blank=True, default="", db_default="")
    tls_client_certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the tenant's admins were e-mailed that this certificate expires soon (reset by a new certificate).
    tls_expiry_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # Publishers cache routes and signers cache secrets until this changes: any write that
    # changes event types, filter, enabled, ordered, the payload settings or secrets must set it (save() does).
    updated_at = models.DateTimeField(auto_now=True)

    # Not a column: a verification token issued by this change of the endpoint, to be answered once.
    issued_verification_token: str | None = None

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="endpoint_tenant_enabled")]

    def __str__(self) -> str:
        return self.name or self.url


class EndpointSecret(models.Model):
    """A signing secret (``whsec_``, v1) or Ed25519 private key (``whsk_``, v1a). The newest of each scheme is
    primary; a rotated-out one signs too until it expires."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="secrets")
    scheme = models.CharField(max_length=4, default="v1", db_default="v1")  # "v1" (HMAC) or "v1a" (Ed25519)
    secret = EncryptedJSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"secret of {self.endpoint_id} from {self.created_at:%Y-%m-%d %H:%M}"


class EndpointHealth(models.Model):
    """What the endpoint's latest requests said: kept by the recorder in the transaction that
    inserts the attempts, read by the admin and the dashboard, and the clock of auto-disable.

    Attempts that made no request (refused by the address policy, no secret) move nothing here.
    """

    endpoint = models.OneToOneField(Endpoint, primary_key=True, on_delete=models.CASCADE, related_name="health")
    last_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Attempts in a row that did not succeed (any answer but 2xx, or none); the auto-disable clock
    # (failing_since) runs while it is above 0. Not EndpointSchedule.down_in_a_row (the circuit's streak).
    failed_in_a_row = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="First failed request since the last success or since an admin enabled the endpoint; "
        "the endpoint is disabled when this is older than the auto-disable period.",
    )

    # The warnings before auto-disable already sent for the failing spell that began at ``warned_spell``
    # (subscriptions.warnings); a new spell (another failing_since) starts again from none.
    warned_spell = models.DateTimeField(null=True, blank=True)
    warnings_sent = models.PositiveSmallIntegerField(default=0, db_default=0)  # the health upsert leaves it out

    class Meta:
        verbose_name_plural = "endpoint health"

    def __str__(self) -> str:
        return f"health of {self.endpoint_id}"
