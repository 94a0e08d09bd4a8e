"""E-mails to a tenant's admins about client certificates that expire within EXPIRY_WARNING_DAYS: once per
certificate (a new certificate is warned about afresh), from a periodic task."""

import logging
from datetime import datetime, timedelta
from smtplib import SMTPException

from django.core.mail import send_mail

from subscriptions.certificates import EXPIRY_WARNING_DAYS, expiry_warning
from subscriptions.models import Endpoint
from subscriptions.selectors import tenant_admin_emails
from subscriptions.warnings import endpoint_page_url

logger = logging.getLogger(__name__)


def warn_expiring_certificates(*, now: datetime) -> int:
    """E-mail about every certificate that expires soon and was not warned about yet; returns how many
    endpoints were warned about. Each is claimed by one conditional update, so two runs do not both send; a mail
    that could not go out gives its claim back (the next run tries again) and the others still go."""
    due = Endpoint.objects.filter(
        tls_client_certificate_expires_at__lte=now + timedelta(days=EXPIRY_WARNING_DAYS),
        tls_expiry_warned_at__isnull=True,
    ).select_related("tenant")
    warned = 0
    for endpoint in due:
        if not Endpoint.objects.filter(pk=endpoint.pk, tls_expiry_warned_at__isnull=True).update(
            tls_expiry_warned_at=now
        ):
            continue
        recipients = tenant_admin_emails(endpoint.tenant)
        try:
            if recipients:
                send_mail(
                    subject=f"[webhookhub] Client certificate expiring: {_one_line(endpoint.name or endpoint.url)}",
                    message=_message(endpoint, now),
                    from_email=None,
                    recipient_list=recipients,
                )
        except (SMTPException, OSError) as exc:
            Endpoint.objects.filter(pk=endpoint.pk, tls_expiry_warned_at=now).update(tls_expiry_warned_at=None)
            logger.warning(
                "No mail about the client certificate of %s (%s); the next run tries again.", endpoint.pk, exc
            )
            continue
        warned += 1
        logger.info("Warned about the client certificate of %s.", endpoint.pk)
    return warned


def _one_line(text: str) -> str:
    """A header holds one line (an endpoint's name may hold several)."""
    return " ".join(text.split())


def _message(endpoint: Endpoint, now: datetime) -> str:
    link = endpoint_page_url(endpoint)
    where = f"\n\n{link}" if link else ""
    return (
        f"The webhook endpoint {endpoint.url} ({endpoint.pk}) of {endpoint.tenant} presents a TLS client "
        f"certificate to its receiver.\n\n{expiry_warning(endpoint.tls_client_certificate_expires_at, now=now)}\n\n"
        "After it expires the receiver refuses the requests and deliveries fail. Upload the renewed certificate "
        f"(and its key, if that changed too) in the endpoint's settings.{where}"
    )
