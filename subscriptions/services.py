"""Writes for endpoints: create, secrets and rotation, enable/disable (auto-disable: ``health``)."""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from accounts.models import Tenant
from ground.conf import setting
from ground.model_fields import concrete_field
from ground.task_names import NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK
from subscriptions import validation
from subscriptions.certificates import check_tls
from subscriptions.keys import V1, V1A, generate_secret, generate_signing_key, public_key
from subscriptions.models import AuthType, Endpoint, EndpointHealth, EndpointSecret, PayloadFormat, SignatureScheme
from subscriptions.selectors import tenant_admin_emails

logger = logging.getLogger(__name__)

ADMIN_DISABLED_REASON = "Disabled by an admin."
MAX_PREVIOUS_SIGNING = 3  # rotated-out secrets (or keys) of a scheme that still sign during their grace


def generate_verification_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # the signing secret, returned once at creation
    verification_token: str | None = None  # a Heymarket endpoint's, returned once at creation


@transaction.atomic
def create_endpoint(
    *,
    tenant: Tenant,
    url: str,
    event_types: list[str] | None = None,
    name: str = "",
    description: str = "",
    auth_type: str = AuthType.NONE,
    auth: dict[str, Any] | None = None,
    custom_headers: dict[str, str] | None = None,
    timeout_s: float | None = None,
    rate_limit_per_s: int | None = None,
    max_in_flight: int | None = None,
    filter: dict[str, Any] | None = None,
    enabled: bool = True,
    ordered: bool = False,
    payload_format: str = PayloadFormat.STANDARD,
    payload_shape: str = "",
    verification: str | None = None,
    retry_schedule: list[float] | str | None = None,
    auto_disable_after_seconds: int | None = None,
    adaptive_concurrency: bool = True,
    signature_scheme: str = SignatureScheme.V1,
    tls_client_certificate: str = "",
    tls_client_key: str | None = None,
    tls_ca_certificate: str = "",
    created_by: Any = None,
) -> CreatedEndpoint:
    """Validate everything first (ValidationError naming the field), then write endpoint and secret (and a
    Heymarket endpoint's verification token). Every endpoint gets a v1 secret and a v1a (Ed25519) key, whichever
    its ``signature_scheme`` signs with, so a receiver can take the public key before the scheme changes.

    ``max_in_flight`` None is the model field's default; ``verification`` None, the format's default;
    ``retry_schedule`` and ``auto_disable_after_seconds`` None, the deployment's.
    """
    if max_in_flight is None:
        max_in_flight = concrete_field(Endpoint, "max_in_flight").default
    clean_auth = validation.clean_auth(auth_type, auth)
    clean_headers = validation.clean_custom_headers(custom_headers)
    validation.check_headers_together(clean_headers, auth_type, clean_auth)
    clean_types = validation.clean_event_types(event_types if event_types is not None else ["*"])
    if verification is None:
        verification = validation.default_verification(payload_format)
    validation.clean_payload(payload_format, payload_shape, verification, clean_types)
    clean_scheme = validation.clean_signature_scheme(signature_scheme)
    validation.check_signing(verification, clean_scheme)
    token = generate_verification_token() if payload_format == PayloadFormat.HEYMARKET else None
    clean_url = validation.clean_url(url)
    tls = check_tls(
        url=clean_url,
        certificate=tls_client_certificate,
        key=tls_client_key,
        ca_certificate=tls_ca_certificate,
        now=timezone.now(),
    )
    endpoint = Endpoint.objects.create(
        tenant=tenant,
        url=clean_url,
        event_types=clean_types,
        name=name,
        description=description,
        auth_type=auth_type,
        auth=clean_auth,
        custom_headers=clean_headers,
        timeout_s=validation.clean_timeout(timeout_s),
        rate_limit_per_s=validation.clean_rate_limit(rate_limit_per_s),
        max_in_flight=validation.clean_max_in_flight(max_in_flight),
        filter=validation.clean_filter(filter),
        enabled=enabled,
        ordered=validation.clean_ordered(ordered),
        payload_format=payload_format,
        payload_shape=payload_shape,
        verification=verification,
        verification_token=token,
        retry_schedule=validation.clean_retry_schedule(retry_schedule),
        auto_disable_after_seconds=validation.clean_auto_disable_after(auto_disable_after_seconds),
        adaptive_concurrency=validation.clean_adaptive_concurrency(adaptive_concurrency),
        signature_scheme=clean_scheme,
        tls_client_certificate=tls.certificate,
        tls_client_key=tls.key,
        tls_ca_certificate=tls.ca_certificate,
        tls_client_certificate_expires_at=tls.expires_at,
        created_by=created_by,
    )
    secret = generate_secret()
    EndpointSecret.objects.bulk_create(
        [
            EndpointSecret(endpoint=endpoint, scheme=V1, secret=secret),
            EndpointSecret(endpoint=endpoint, scheme=V1A, secret=generate_signing_key()),
        ]
    )
    return CreatedEndpoint(endpoint=endpoint, secret=secret, verification_token=token)


def rotate_verification_token(*, endpoint: Endpoint) -> str:
    """A new Heymarket verification token, returned once: requests (retries too) carry it from now on."""
    if endpoint.payload_format != PayloadFormat.HEYMARKET:
        raise ValidationError({"payload_format": "Only a Heymarket endpoint has a verification token."})
    endpoint.verification_token = token = generate_verification_token()
    endpoint.save(update_fields=["verification_token", "updated_at"])
    return token


def rotate_secret(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """A new primary v1 secret; the previous ones keep signing for the grace period, then expire."""
    return _rotate(endpoint, V1, generate_secret(), now or timezone.now())


def rotate_signing_key(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """A new primary v1a (Ed25519) key, answered as its public key; the previous keys keep signing for the
    grace period, then expire. The private key never leaves the platform."""
    key = generate_signing_key()
    _rotate(endpoint, V1A, key, now or timezone.now())
    return public_key(key)


@transaction.atomic
def _rotate(endpoint: Endpoint, scheme: str, secret: str, now: datetime) -> str:
    grace_end = now + timedelta(seconds=setting("SECRET_ROTATION_GRACE_SECONDS"))
    older = endpoint.secrets.filter(scheme=scheme)
    older.filter(expires_at__isnull=True).update(expires_at=grace_end)
    older.filter(expires_at__gt=grace_end).update(expires_at=grace_end)
    # Rotations in a row within the grace period: only the newest few previous ones keep signing.
    live = older.filter(expires_at__gt=now).order_by("-created_at", "-id").values_list("pk", flat=True)
    older.filter(pk__in=list(live[MAX_PREVIOUS_SIGNING:])).update(expires_at=now)
    EndpointSecret.objects.create(endpoint=endpoint, scheme=scheme, secret=secret)
    # Senders cache secrets until the endpoint changes.
    Endpoint.objects.filter(pk=endpoint.pk).update(updated_at=now)
    endpoint.updated_at = now
    return secret


def disable_endpoint(*, endpoint: Endpoint, reason: str, notify: bool = True) -> bool:
    """Disable with a reason; True if this call disabled it. Tenant admins are e-mailed, from a task
    queued when the transaction commits (the caller may be the worker's recorder: no SMTP there)."""
    now = timezone.now()
    changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason[:500], disabled_at=now, updated_at=now
    )
    if changed:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:500], now
        logger.warning("Endpoint %s disabled: %s", endpoint.pk, reason)
        if notify:
            transaction.on_commit(lambda: _queue_disabled_notice(endpoint.pk, reason[:500]))
    return bool(changed)


def _queue_disabled_notice(endpoint_id: str, reason: str) -> None:
    try:
        current_app.send_task(NOTIFY_DISABLED_TASK, args=[endpoint_id, reason])
    except (KombuOperationalError, OSError) as exc:
        logger.warning("Broker unreachable (%s): no e-mail about disabling %s.", type(exc).__name__, endpoint_id)


def enable_endpoint(*, endpoint: Endpoint) -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, updated_at=timezone.now()
    )
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
    restart_failing_clock(endpoint)


def restart_failing_clock(endpoint: Endpoint) -> None:
    """An admin enabled the endpoint: it gets a whole auto-disable period again."""
    EndpointHealth.objects.filter(endpoint=endpoint).update(failing_since=None)


ENABLE_THROUGH_TEST = (
    "A disabled endpoint is not enabled by changing this field: enable it with POST "
    '/api/v1/endpoints/{id}/enable/ (the admin\'s "Enable (after a test event)" button), which sends it a '
    'test event first and enables it only if it answers 2xx, or force it with {"force": true}.'
)


def refuse_enabling(endpoint: Endpoint, *, enabled: bool) -> None:
    """ValidationError (on ``enabled``) when a write would enable a disabled endpoint: that goes through its
    enable action (``deliveries.services.enabling``), so a still-broken endpoint does not get its backlog again.
    Disabling stays a plain write."""
    if enabled and not endpoint.enabled:
        raise ValidationError({"enabled": ENABLE_THROUGH_TEST.replace("{id}", endpoint.pk or "{id}")})


def notify_endpoint_disabled(*, endpoint: Endpoint, reason: str) -> int:
    """E-mail the tenant's admins that the endpoint was disabled; returns how many messages went out."""
    recipients = tenant_admin_emails(endpoint.tenant)
    if not recipients:
        return 0
    return send_mail(
        subject=f"[webhookhub] Endpoint disabled: {endpoint.name or endpoint.url}",
        message=(
            f"The webhook endpoint {endpoint.url} ({endpoint.pk}) of {endpoint.tenant} was disabled.\n\n"
            f"Reason: {reason}\n\n"
            "No events are delivered to it until an admin enables it again; failed deliveries can be replayed."
        ),
        from_email=None,
        recipient_list=recipients,
    )


_UNSET: Any = object()


@transaction.atomic
def update_endpoint(
    *,
    endpoint: Endpoint,
    url: str = _UNSET,
    event_types: list[str] = _UNSET,
    name: str = _UNSET,
    description: str = _UNSET,
    auth_type: str = _UNSET,
    auth: dict[str, Any] | None = _UNSET,
    custom_headers: dict[str, str] | None = _UNSET,
    timeout_s: float | None = _UNSET,
    rate_limit_per_s: int | None = _UNSET,
    max_in_flight: int = _UNSET,
    filter: dict[str, Any] | None = _UNSET,
    enabled: bool = _UNSET,
    ordered: bool = _UNSET,
    payload_format: str = _UNSET,
    payload_shape: str = _UNSET,
    verification: str = _UNSET,
    retry_schedule: list[float] | str | None = _UNSET,
    auto_disable_after_seconds: int | None = _UNSET,
    adaptive_concurrency: bool = _UNSET,
    signature_scheme: str = _UNSET,
    tls_client_certificate: str = _UNSET,
    tls_client_key: str | None = _UNSET,
    tls_ca_certificate: str = _UNSET,
) -> Endpoint:
    """Change what is given; validate all of it first (ValidationError naming the field).

    Auth is replaced only when ``auth`` is given; changing ``auth_type`` requires new values. A change of
    ``payload_format`` drops a shape it does not use and takes the new format's verification unless one is
    given; the first switch to Heymarket issues a verification token, returned once in
    ``endpoint.issued_verification_token``. A new shape applies to events published after it.

    The TLS settings are checked together with the URL: a new certificate needs its key unless the stored key
    belongs to it (a renewal of the same key); clearing the certificate drops the key.
    """
    _change_payload(endpoint, payload_format, payload_shape, verification, event_types)
    if url is not _UNSET:
        endpoint.url = validation.clean_url(url)
    if event_types is not _UNSET:
        endpoint.event_types = validation.clean_event_types(event_types)
    if auth is not _UNSET or auth_type is not _UNSET:
        new_type = endpoint.auth_type if auth_type is _UNSET else auth_type
        if auth is _UNSET and new_type != endpoint.auth_type and new_type != AuthType.NONE:
            raise ValidationError({"auth": f"Give the new {new_type} values when changing the auth type."})
        endpoint.auth = validation.clean_auth(new_type, endpoint.auth if auth is _UNSET else auth)
        endpoint.auth_type = new_type
    if custom_headers is not _UNSET:
        endpoint.custom_headers = validation.clean_custom_headers(custom_headers)
    if timeout_s is not _UNSET:
        endpoint.timeout_s = validation.clean_timeout(timeout_s)
    if filter is not _UNSET:
        endpoint.filter = validation.clean_filter(filter)
    if rate_limit_per_s is not _UNSET:
        endpoint.rate_limit_per_s = validation.clean_rate_limit(rate_limit_per_s)
    if max_in_flight is not _UNSET:
        endpoint.max_in_flight = validation.clean_max_in_flight(max_in_flight)
    if ordered is not _UNSET:
        endpoint.ordered = validation.clean_ordered(ordered)
    if retry_schedule is not _UNSET:  # applies to the next retry decision of deliveries already pending too
        endpoint.retry_schedule = validation.clean_retry_schedule(retry_schedule)
    if auto_disable_after_seconds is not _UNSET:
        endpoint.auto_disable_after_seconds = validation.clean_auto_disable_after(auto_disable_after_seconds)
    if adaptive_concurrency is not _UNSET:
        endpoint.adaptive_concurrency = validation.clean_adaptive_concurrency(adaptive_concurrency)
    if signature_scheme is not _UNSET:
        endpoint.signature_scheme = validation.clean_signature_scheme(signature_scheme)
    validation.check_signing(endpoint.verification, endpoint.signature_scheme)
    _change_tls(endpoint, url, tls_client_certificate, tls_client_key, tls_ca_certificate)
    for field, value in (("name", name), ("description", description)):
        if value is not _UNSET:
            setattr(endpoint, field, value)
    validation.check_headers_together(endpoint.custom_headers or {}, endpoint.auth_type, endpoint.auth)
    if enabled is not _UNSET and enabled != endpoint.enabled:
        refuse_enabling(endpoint, enabled=enabled)  # enabling is a test first: deliveries.services.enabling
        endpoint.enabled = False
        endpoint.disabled_reason = ADMIN_DISABLED_REASON
        endpoint.disabled_at = timezone.now()
    endpoint.save()
    return endpoint


def _change_tls(endpoint: Endpoint, url: Any, certificate: Any, key: Any, ca_certificate: Any) -> None:
    if all(value is _UNSET for value in (url, certificate, key, ca_certificate)):
        return
    if certificate is not _UNSET and not certificate and key is _UNSET:
        key = None  # no certificate, no key
    tls = check_tls(
        url=endpoint.url,
        certificate=endpoint.tls_client_certificate if certificate is _UNSET else certificate,
        key=endpoint.tls_client_key if key is _UNSET else key,
        ca_certificate=endpoint.tls_ca_certificate if ca_certificate is _UNSET else ca_certificate,
        now=timezone.now(),
        stored_certificate=endpoint.tls_client_certificate,
    )
    if tls.certificate != endpoint.tls_client_certificate:
        endpoint.tls_expiry_warned_at = None  # a new certificate is warned about afresh
    endpoint.tls_client_certificate, endpoint.tls_client_key = tls.certificate, tls.key
    endpoint.tls_ca_certificate, endpoint.tls_client_certificate_expires_at = tls.ca_certificate, tls.expires_at


def _change_payload(
    endpoint: Endpoint, payload_format: Any, payload_shape: Any, verification: Any, event_types: Any
) -> None:
    endpoint.issued_verification_token = None
    given = {"payload_format": payload_format, "payload_shape": payload_shape, "verification": verification}
    if event_types is _UNSET and all(value is _UNSET for value in given.values()):
        return
    changes = {name: value for name, value in given.items() if value is not _UNSET}
    types = None if event_types is _UNSET else validation.clean_event_types(event_types)
    resolved = validation.resolved_payload(endpoint, event_types=types, **changes)
    endpoint.payload_format, endpoint.payload_shape, endpoint.verification = resolved
    if endpoint.payload_format == PayloadFormat.HEYMARKET and not endpoint.verification_token:
        endpoint.verification_token = endpoint.issued_verification_token = generate_verification_token()


def primary_secret(endpoint: Endpoint) -> str:
    """The newest v1 signing secret (admins may read it again on purpose; v1a private keys are never read)."""
    return endpoint.secrets.filter(scheme=V1).order_by("-created_at", "-id")[0].secret  # one from creation


def queue_disable_warning(*, endpoint_id: str, failing_since: datetime) -> None:
    """When the caller's transaction commits, queue the e-mail warning the tenant's admins that the endpoint,
    failing since ``failing_since``, will be disabled (``subscriptions.warnings``; the caller may be the
    worker's recorder: no SMTP there)."""
    spell = failing_since.isoformat()
    transaction.on_commit(lambda: _queue_disable_warning(endpoint_id, spell))


def _queue_disable_warning(endpoint_id: str, spell: str) -> None:
    try:
        current_app.send_task(NOTIFY_DISABLE_WARNING_TASK, args=[endpoint_id, spell])
    except (KombuOperationalError, OSError) as exc:
        logger.warning("Broker unreachable (%s): no e-mail warning about %s.", type(exc).__name__, endpoint_id)
