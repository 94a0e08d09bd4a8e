"""``publish``: record an event and fan it out to the endpoints that want it, atomically."""

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services import dispatch
from events.exceptions import UnknownEventType
from events.models import Event, EventSource
from events.services import EVENT_COLUMNS, event_with_key, insert_event, new_event
from subscriptions.selectors import matching_endpoint_ids, owned_endpoint_ids
from webhookhub import fastsql
from webhookhub.accounts.models import Tenant

_DELIVERY_COLUMNS = [field.attname for field in Delivery._meta.concrete_fields if not field.primary_key]
_IDEMPOTENCY_CONFLICT = (["tenant_id", "idempotency_key"], "idempotency_key IS NOT NULL")


def _resolve_tenant(tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    found = Tenant.objects.filter(slug=tenant).first() or Tenant.objects.filter(pk=tenant).first()
    if found is None:
        raise ValueError(f"Unknown tenant {tenant!r}.")
    return found


def _write(event: Event, deliveries: list[Delivery]) -> bool:
    """Event and deliveries, all or nothing; False if the idempotency key was taken meanwhile."""
    if connection.vendor == "postgresql":
        conflict = _IDEMPOTENCY_CONFLICT if event.idempotency_key is not None else None
        return fastsql.insert_with_children(event, EVENT_COLUMNS, deliveries, _DELIVERY_COLUMNS, conflict=conflict)
    with transaction.atomic():
        if not insert_event(event):
            return False
        if deliveries:
            fastsql.insert(deliveries, _DELIVERY_COLUMNS)
    return True


def publish(
    *,
    tenant: Tenant | str,
    type: str,
    data: dict[str, Any],
    idempotency_key: str | None = None,
    occurred_at: datetime | None = None,
    source: str = EventSource.APP,
    endpoint_ids: list[str] | None = None,
) -> Event:
    """Publish one event and return it.

    Writes the Event and one Delivery per matching enabled endpoint (or, with
    ``endpoint_ids``, to exactly those endpoints of the tenant) atomically, and
    rings the workers once that has committed (inside a caller's transaction: when
    it commits). A repeated ``idempotency_key`` returns the first event and writes
    nothing. Raises ``events.exceptions.PublishError`` subclasses for bad input.
    """
    tenant = _resolve_tenant(tenant)
    if idempotency_key is not None and (existing := event_with_key(tenant, idempotency_key)) is not None:
        return existing
    if endpoint_ids is None:
        endpoint_ids = matching_endpoint_ids(tenant=tenant, event_type=type, data=data)
        if endpoint_ids is None:
            raise UnknownEventType(f"Unknown event type {type!r}; see the event-type catalog.")
        type_checked = True
    else:
        endpoint_ids, type_checked = owned_endpoint_ids(tenant=tenant, endpoint_ids=endpoint_ids), False
    event = new_event(
        tenant=tenant,
        type=type,
        data=data,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        source=source,
        type_checked=type_checked,
    )
    now = timezone.now()
    deliveries = [Delivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now) for endpoint_id in endpoint_ids]
    if not _write(event, deliveries):
        return event_with_key(tenant, idempotency_key)
    event._state.adding = False
    if deliveries:
        transaction.on_commit(dispatch.ring)
    return event
