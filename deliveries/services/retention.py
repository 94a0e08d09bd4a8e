"""Retention: old events whose deliveries are all finished go, with their deliveries and attempts.

An event older than the cutoff is purged only when none of its deliveries is pending (waiting,
retrying or in flight): a delivery that may still be sent is never deleted, whatever its age.
Each batch is one short transaction: it locks the batch's deliveries (so a resend cannot make
one pending meanwhile), re-checks, and deletes attempts, deliveries and events. Rollups and
endpoint health live in their own tables and are not touched. The sweeper purges one batch per
turn past ``RETENTION_DAYS``; ``manage.py purge`` does the same on demand.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef

from deliveries.models import Attempt, Delivery, DeliveryStatus
from events.models import Event
from webhookhub.accounts.models import Tenant

PURGE_BATCH_EVENTS = 200  # events per transaction: short locks, small deletes


@dataclass
class Purged:
    events: int = 0
    deliveries: int = 0
    attempts: int = 0

    def add(self, other: "Purged") -> None:
        self.events += other.events
        self.deliveries += other.deliveries
        self.attempts += other.attempts


def _pending(event_ref):
    return Exists(Delivery.objects.filter(event=event_ref, status=DeliveryStatus.PENDING))


def purgeable_events(*, before: datetime, tenant: Tenant | None = None):
    events = Event.objects.filter(created_at__lt=before).exclude(_pending(OuterRef("pk")))
    return events.filter(tenant=tenant) if tenant is not None else events


def count_purgeable(*, before: datetime, tenant: Tenant | None = None) -> Purged:
    """What a purge would delete now (a dry run)."""
    events = purgeable_events(before=before, tenant=tenant)
    return Purged(
        events=events.count(),
        deliveries=Delivery.objects.filter(event__in=events).count(),
        attempts=Attempt.objects.filter(delivery__event__in=events).count(),
    )


def purge_batch(*, before: datetime, tenant: Tenant | None = None, size: int = PURGE_BATCH_EVENTS) -> Purged:
    """Delete up to ``size`` purgeable events with their deliveries and attempts, in one transaction."""
    with transaction.atomic():
        ids = list(
            purgeable_events(before=before, tenant=tenant).order_by("created_at").values_list("pk", flat=True)[:size]
        )
        if not ids:
            return Purged()
        locked = list(Delivery.objects.select_for_update().filter(event_id__in=ids).values_list("event_id", "status"))
        pending_now = {event_id for event_id, status in locked if status == DeliveryStatus.PENDING}
        ids = [pk for pk in ids if pk not in pending_now]  # resent since the read: keep them
        attempts, _ = Attempt.objects.filter(delivery__event_id__in=ids).delete()
        deliveries, _ = Delivery.objects.filter(event_id__in=ids).delete()
        Event.objects.filter(pk__in=ids).delete()
        return Purged(events=len(ids), deliveries=deliveries, attempts=attempts)


def purge(
    *,
    before: datetime,
    tenant: Tenant | None = None,
    on_batch: Callable[[Purged], None] | None = None,
    size: int = PURGE_BATCH_EVENTS,
) -> Purged:
    """Purge batch after batch until nothing older than ``before`` is purgeable; returns the totals."""
    total = Purged()
    while True:
        batch = purge_batch(before=before, tenant=tenant, size=size)
        if not batch.events:
            return total
        total.add(batch)
        if on_batch is not None:
            on_batch(total)


def retention_cutoff(*, now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
