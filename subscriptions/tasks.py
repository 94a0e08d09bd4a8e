"""Thin Celery tasks: ids in, a service call, a small result out."""

from datetime import datetime
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from ground.task_names import NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK, WARN_EXPIRING_CERTIFICATES_TASK
from subscriptions.expiring_certificates import warn_expiring_certificates
from subscriptions.models import Endpoint
from subscriptions.services import notify_endpoint_disabled
from subscriptions.warnings import notify_disable_warning


@shared_task(
    name=NOTIFY_DISABLED_TASK,
    ignore_result=True,
    autoretry_for=(SMTPException, OSError),  # the mail server is down or slow (EMAIL_TIMEOUT)
    retry_backoff=True,
    max_retries=5,
)
def notify_disabled(endpoint_id: str, reason: str) -> int:
    """E-mail the tenant's admins that an endpoint was disabled (nothing if it was deleted since)."""
    endpoint = Endpoint.objects.select_related("tenant").filter(pk=endpoint_id).first()
    return notify_endpoint_disabled(endpoint=endpoint, reason=reason) if endpoint else 0


@shared_task(
    name=NOTIFY_DISABLE_WARNING_TASK,
    ignore_result=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def notify_disable_warning_task(endpoint_id: str, failing_since: str) -> int:
    """E-mail the tenant's admins that an endpoint failing since ``failing_since`` (ISO 8601) will be disabled
    unless it answers (nothing if it was deleted, or the spell is over)."""
    endpoint = Endpoint.objects.select_related("tenant").filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    return notify_disable_warning(endpoint=endpoint, failing_since=datetime.fromisoformat(failing_since))


@shared_task(name=WARN_EXPIRING_CERTIFICATES_TASK, ignore_result=True)
def warn_expiring_certificates_task() -> int:
    """Periodic: e-mail the tenant's admins about client certificates that expire within 14 days (once each)."""
    return warn_expiring_certificates(now=timezone.now())
