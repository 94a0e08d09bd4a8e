"""Retention: old events whose deliveries are all finished go, with their deliveries and attempts.

An event older than the cutoff is purged only when none of its deliveries is pending (waiting,
retrying or in flight): a delivery that may still be sent is never deleted, whatever its age.
Each batch is one short transaction: it locks the batch's deliveries (so a resend cannot make
one pending meanwhile), re-checks, and deletes attempts, deliveries, payloads and events. Rollups and
endpoint health live in their own tables and are not touched. The sweeper purges past
``RETENTION_DAYS`` for a quarter of each turn; ``manage.py purge`` does the same on demand, paced
so that it deletes half of the time (``--busy``). The sweeper also forgets the sequence counters of
ordering keys idle for as long (``forget_idle_keys``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic, sleep
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, Model, OuterRef, QuerySet

from accounts.models import Tenant
from deliveries.models import Attempt, Delivery, DeliveryStatus, KeySequence, Payload
from events.models import Event, TriggerRequest

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


def _pending(event_ref: OuterRef) -> Exists:
    return Exists(Delivery.objects.filter(event=event_ref, status=DeliveryStatus.PENDING))


def purgeable_events(*, before: datetime, tenant: Tenant | None = None) -> QuerySet[Event]:
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
        locked = list(
            Delivery.objects.select_for_update().filter(event_id__in=ids).values_list("pk", "event_id", "status")
        )
        pending_now = {event_id for _, event_id, status in locked if status == DeliveryStatus.PENDING}
        ids = [pk for pk in ids if pk not in pending_now]  # resent since the read: keep them
        delivery_ids = [pk for pk, event_id, _ in locked if event_id not in pending_now]
        attempts = _delete(Attempt, "delivery_id", delivery_ids)
        deliveries = _delete(Delivery, "id", delivery_ids)
        _delete(Payload, "event_id", ids)
        TriggerRequest.objects.filter(event_id__in=ids).update(event=None)  # what its SET_NULL asks
        _delete(Event, "id", ids)
        return Purged(events=len(ids), deliveries=deliveries, attempts=attempts)


def _delete(model: type[Model], column: str, values: list[Any]) -> int:
    """One plain DELETE. What references these rows is gone (or unlinked) just before, so Django's
    collector, which would load every row (event bodies included) to cascade, has nothing to do."""
    if not values:
        return 0
    table, quoted = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {quoted} IN ({placeholders})", values)  # noqa: S608 - names only
        return int(cursor.rowcount)


def purge(
    *,
    before: datetime,
    tenant: Tenant | None = None,
    on_batch: Callable[[Purged], None] | None = None,
    size: int = PURGE_BATCH_EVENTS,
    busy_share: float = 1.0,
    max_seconds: float | None = None,
) -> Purged:
    """Purge batch after batch until nothing older than ``before`` is purgeable; returns the totals.

    ``busy_share`` (0-1]: after each batch, pause so that deleting takes at most that share of
    the time, leaving the database to publishing and sending. ``max_seconds``: stop after the
    batch that reaches it (the rest is left for the next call).
    """
    if not 0 < busy_share <= 1:
        raise ValueError(f"busy_share must be more than 0 and at most 1, not {busy_share!r}.")
    total = Purged()
    started = monotonic()
    while True:
        batch_started = monotonic()
        batch = purge_batch(before=before, tenant=tenant, size=size)
        if not batch.events:
            return total
        total.add(batch)
        if on_batch is not None:
            on_batch(total)
        if max_seconds is not None and monotonic() - started >= max_seconds:
            return total
        if busy_share < 1:
            sleep((monotonic() - batch_started) * (1 / busy_share - 1))


def forget_idle_keys(*, before: datetime, size: int = 1000) -> int:
    """Delete the sequence counters of ordering keys last published to before ``before`` with nothing of the key
    pending (up to ``size``); returns how many. A key that comes back after that starts again at 1."""
    waiting = Delivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"), ordering_key=OuterRef("key"), status=DeliveryStatus.PENDING
    )
    idle = KeySequence.objects.filter(updated_at__lt=before).exclude(Exists(waiting))
    ids = list(idle.order_by("updated_at").values_list("pk", flat=True)[:size])
    return _delete(KeySequence, "id", ids)


def retention_cutoff(*, now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
