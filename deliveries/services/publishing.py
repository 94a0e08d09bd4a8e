"""``publish``: record an event and fan it out to the endpoints that want it, in one transaction."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services import dispatch
from events.models import Event, EventSource
from events.services import record_event
from subscriptions.selectors import matching_endpoint_ids, owned_endpoint_ids
from webhookhub import fastsql
from webhookhub.accounts.models import Tenant

_DELIVERY_COLUMNS = [field.attname for field in Delivery._meta.concrete_fields if not field.primary_key]


def _resolve_tenant(tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    found = Tenant.objects.filter(slug=tenant).first() or Tenant.objects.filter(pk=tenant).first()
    if found is None:
        raise ValueError(f"Unknown tenant {tenant!r}.")
    return found


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
    ``endpoint_ids``, to exactly those endpoints of the tenant) in one
    transaction; the workers are rung when it commits. A
    repeated ``idempotency_key`` returns the first event and writes nothing.
    Raises ``events.exceptions.PublishError`` subclasses for bad input.
    """
    tenant = _resolve_tenant(tenant)
    with transaction.atomic():
        recorded = record_event(
            tenant=tenant,
            type=type,
            data=data,
            idempotency_key=idempotency_key,
            occurred_at=occurred_at,
            source=source,
        )
        if not recorded.created:
            return recorded.event
        if endpoint_ids is None:
            endpoint_ids = matching_endpoint_ids(tenant=tenant, event_type=type, data=data)
        else:
            endpoint_ids = owned_endpoint_ids(tenant=tenant, endpoint_ids=endpoint_ids)
        if not endpoint_ids:
            return recorded.event
        now = timezone.now()
        fastsql.insert(
            [
                Delivery(event=recorded.event, endpoint_id=endpoint_id, next_attempt_at=now)
                for endpoint_id in endpoint_ids
            ],
            _DELIVERY_COLUMNS,
        )
        transaction.on_commit(dispatch.ring)
    return recorded.event
