"""What people do to deliveries by hand (admin, API, dashboard): resend one, cancel, replay many, send a test event."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from deliveries.models import Delivery, DeliveryQuerySet, DeliveryStatus
from deliveries.services import doorbell
from deliveries.services.publishing import publish
from deliveries.services.shaping import with_bodies_again
from events.catalog import TEST_EVENT_TYPE
from events.models import EventSource, EventType
from subscriptions.models import Endpoint

_AGAIN = {"status": DeliveryStatus.PENDING, "lease_until": None, "completed_at": None}

# What a replay may send again: finished deliveries (a pending one is on its way already).
REPLAYABLE_STATUSES: tuple[DeliveryStatus, ...] = (
    DeliveryStatus.FAILED,
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.CANCELLED,
)


def resend(delivery: Delivery) -> Delivery:
    """Send this delivery again now, with the same event id and body (one more attempt).

    A delivery a worker is sending right now (pending with a live lease) is left to it.
    """
    now = timezone.now()
    chosen = with_bodies_again(Delivery.objects.filter(pk=delivery.pk))
    if chosen.not_in_flight(now).update(next_attempt_at=now, **_AGAIN):
        transaction.on_commit(doorbell.ring)
    delivery.refresh_from_db()
    return delivery


def cancel_pending(deliveries: DeliveryQuerySet) -> int:
    """Cancel those still pending and not held by a worker right now; returns how many. A cancelled delivery
    with an ordering key lets the next of its key go: the workers are rung."""
    now = timezone.now()
    chosen = deliveries.pending().not_in_flight(now)
    keyed = chosen.filter(ordering_key__isnull=False).exists()
    count = chosen.update(
        status=DeliveryStatus.CANCELLED, next_attempt_at=None, completed_at=now, last_error="Cancelled by an admin."
    )
    if count and keyed:
        transaction.on_commit(doorbell.ring)
    return count


def replay(*, endpoint: Endpoint, statuses: list[str], since: datetime, until: datetime, dry_run: bool = False) -> int:
    """Send again the endpoint's deliveries with those statuses created in [since, until); returns how many.

    ValidationError (on ``status``) if a status is not one of ``REPLAYABLE_STATUSES``.
    """
    refused = sorted(set(statuses) - set(REPLAYABLE_STATUSES))
    if refused:
        allowed = ", ".join(REPLAYABLE_STATUSES)
        raise ValidationError({"status": f"Only {allowed} deliveries can be replayed, not {', '.join(refused)}."})
    chosen = Delivery.objects.filter(
        endpoint=endpoint, status__in=statuses, created_at__gte=since, created_at__lt=until
    )
    if dry_run:
        return chosen.count()
    chosen = with_bodies_again(chosen)
    count = chosen.update(next_attempt_at=timezone.now(), **_AGAIN)
    if count:
        transaction.on_commit(doorbell.ring)
    return count


def send_test_event(*, endpoint: Endpoint, data: dict[str, Any] | None = None) -> Delivery:
    """A ``webhook.test`` event to this endpoint only, through the normal delivery path."""
    if data is None:
        data = EventType.objects.get(name=TEST_EVENT_TYPE).example
    event = publish(
        tenant=endpoint.tenant, type=TEST_EVENT_TYPE, data=data, source=EventSource.TEST, endpoint_ids=[endpoint.pk]
    )
    return Delivery.objects.get(event=event, endpoint=endpoint)
