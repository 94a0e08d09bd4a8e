"""``publish``: record an event and fan it out to the endpoints that want it, atomically."""

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.access import tenant_named
from accounts.models import Tenant
from deliveries.models import Delivery, DeliveryStatus, Payload
from deliveries.numbers.tallying import count_published, published_sql
from deliveries.services import doorbell, ordering, wakeups
from deliveries.services.shaping import Bodies, bodies_for, new_deliveries
from events.exceptions import UnknownEventType
from events.models import Event, EventSource
from events.services import (
    EVENT_COLUMNS,
    event_with_key,
    insert_event,
    is_publishable_type,
    new_event,
    publishable_type_guard,
)
from ground import raw_insert
from subscriptions.selectors import Routes, owned_endpoint_ids, routes

DELIVERY_COLUMNS = [field.attname for field in Delivery._meta.concrete_fields if not field.primary_key]
PAYLOAD_COLUMNS = [field.attname for field in Payload._meta.concrete_fields]
IDEMPOTENCY_CONFLICT = (["tenant_id", "idempotency_key"], "idempotency_key IS NOT NULL")


class _Stale(Exception):
    """The cached routes no longer match the tenant's endpoints."""


def resolve_tenant(tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    found = tenant_named(tenant)
    if found is None:
        raise ValueError(f"Unknown tenant {tenant!r}.")
    return found


def _write_postgresql(
    event: Event, endpoint_ids: list[str], bodies: Bodies, guards: list[tuple[str, list[Any]]]
) -> bool:
    """One statement, the event, its payloads and its deliveries: writes only if the type is publishable and the
    routes are current; with NOTIFY wake-ups it also wakes the workers, when it commits."""
    conflict = IDEMPOTENCY_CONFLICT if event.idempotency_key is not None else None
    counted = (
        published_sql(in_publish_statement=True),
        [event.tenant_id, len(endpoint_ids), int(event.breaks_schema)],
    )
    inserted, held = raw_insert.insert_with_children(
        event,
        EVENT_COLUMNS,
        [
            (bodies.payloads, PAYLOAD_COLUMNS),
            (new_deliveries(event, endpoint_ids, bodies, now=timezone.now()), DELIVERY_COLUMNS),
        ],
        conflict=conflict,
        guards=guards,
        also=[counted],
        notify=(wakeups.notification_sql(), [endpoint_ids]) if endpoint_ids and wakeups.notifying() else None,
    )
    if held and not held[0]:
        raise UnknownEventType(f"Unknown event type {event.event_type_id!r}; see the event-type catalog.")
    if len(held) > 1 and not held[1]:
        raise _Stale
    return inserted


def _publish_postgresql(
    event: Event, tenant: Tenant, data: dict[str, Any], endpoint_ids: list[str] | None
) -> tuple[bool, list[str]]:
    """(inserted, endpoint ids) in one round trip when this process's routes are current and no delivery takes a
    number of an ordering key; else in a transaction."""
    type_guard = publishable_type_guard(event.event_type_id)
    for fresh in (False, True):
        current = routes(tenant, fresh=fresh)
        targets = endpoint_ids if endpoint_ids is not None else current.endpoint_ids(event.event_type_id, data)
        if _numbered(event, targets, current):  # the guard below sees a change of an endpoint's ordering
            return _publish_in_transaction(event, tenant, data, endpoint_ids)
        bodies = bodies_for(event, targets, current.shapes)  # and of an endpoint's shape
        try:
            return _write_postgresql(event, targets, bodies, [type_guard, current.guard()]), targets
        except _Stale:
            continue
    raise RuntimeError("The tenant's endpoints changed during publishing twice in a row; try again.")


def _numbered(event: Event, endpoint_ids: list[str], current: Routes) -> bool:
    """Whether some of the event's deliveries take a number of its ordering key (``ordering``)."""
    return event.ordering_key is not None and not current.ordered.isdisjoint(endpoint_ids)


def _publish_in_transaction(
    event: Event, tenant: Tenant, data: dict[str, Any], endpoint_ids: list[str] | None
) -> tuple[bool, list[str]]:
    """The statements one by one in a transaction: on other databases, and for a keyed event to an ordered
    endpoint (its deliveries are numbered in the same transaction)."""
    if not is_publishable_type(event.event_type_id):
        raise UnknownEventType(f"Unknown event type {event.event_type_id!r}; see the event-type catalog.")
    with transaction.atomic():
        current = routes(tenant, fresh=True)
        if endpoint_ids is None:
            endpoint_ids = current.endpoint_ids(event.event_type_id, data)
        if not insert_event(event):
            return False, endpoint_ids
        if endpoint_ids:
            now = timezone.now()
            bodies = bodies_for(event, endpoint_ids, current.shapes)
            deliveries = new_deliveries(event, endpoint_ids, bodies, now=now)
            if _numbered(event, endpoint_ids, current):
                pending = [delivery for delivery in deliveries if delivery.status == DeliveryStatus.PENDING]
                ordering.number(pending, ordered=current.ordered, now=now)
            if bodies.payloads:
                raw_insert.insert(bodies.payloads, PAYLOAD_COLUMNS)
            raw_insert.insert(deliveries, DELIVERY_COLUMNS)
            if wakeups.notifying():
                wakeups.notify(endpoint_ids)  # sent when the transaction commits
        count_published(event.tenant_id, len(endpoint_ids), schema_violations=int(event.breaks_schema))
    return True, endpoint_ids


def publish(
    *,
    tenant: Tenant | str,
    type: str,
    data: dict[str, Any],
    idempotency_key: str | None = None,
    occurred_at: datetime | None = None,
    source: str = EventSource.APP,
    endpoint_ids: list[str] | None = None,
    ordering_key: str | None = None,
) -> Event:
    """Publish one event and return it.

    Writes the Event and one Delivery per matching enabled endpoint (or, with
    ``endpoint_ids``, to exactly those endpoints of the tenant) atomically, and
    rings the workers once that has committed (inside a caller's transaction: when
    it commits). A repeated ``idempotency_key`` returns the first event and writes
    nothing. ``ordering_key``: the endpoints set to ``ordered`` receive the events of one key one at
    a time, in publish order (``deliveries.services.ordering``); without it the event type's key
    path may give one (``events.ordering``). Raises ``events.exceptions.PublishError`` subclasses for
    bad input.

    On PostgreSQL this is one statement: the tenant's routes come from a per-process
    cache and the statement itself checks that they and the event type are current.
    The same statement (or transaction) adds to the tenant's publish totals (/metrics) and,
    with NOTIFY wake-ups, raises the notification that wakes the workers when it commits.
    """
    tenant = resolve_tenant(tenant)
    if idempotency_key is not None and (existing := event_with_key(tenant, idempotency_key)) is not None:
        return existing
    event = new_event(
        tenant=tenant,
        type=type,
        data=data,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        source=source,
        type_checked=True,  # checked below, in the same statement or transaction as the write
        ordering_key=ordering_key,
    )
    if endpoint_ids is not None:
        endpoint_ids = owned_endpoint_ids(tenant=tenant, endpoint_ids=endpoint_ids)
    write = _publish_postgresql if connection.vendor == "postgresql" else _publish_in_transaction
    inserted, endpoint_ids = write(event, tenant, data, endpoint_ids)
    if not inserted:  # only a repeated idempotency key writes nothing: the first event is returned
        existing = event_with_key(tenant, idempotency_key) if idempotency_key is not None else None
        if existing is None:
            raise RuntimeError("The event was not written and no event has its idempotency key.")
        return existing
    event._state.adding = False
    if endpoint_ids and not wakeups.notifying():  # else the statement or transaction notified
        transaction.on_commit(doorbell.ring)
    return event
