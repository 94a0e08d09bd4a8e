"""Writes for events: the catalog sync and recording one event (idempotently)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Tenant
from events import schemas
from events.catalog import CATALOG
from events.envelope import render_body
from events.exceptions import InvalidPayload, PayloadTooLarge, UnknownEventType
from events.models import Event, EventSource, EventType
from events.ordering import key_of
from ground import raw_insert
from ground.conf import setting
from ground.db import bound_cursor


def sync_catalog() -> int:
    """Create or refresh the EventType rows declared in ``events.catalog``; returns how many."""
    for spec in CATALOG:
        EventType.objects.update_or_create(
            name=spec.name,
            defaults={"description": spec.description, "example": spec.example, "schema": spec.schema},
        )
    return len(CATALOG)


def sync_catalog_after_migrate(**kwargs: Any) -> None:
    using = kwargs.get("using")
    if using in (None, "default"):
        sync_catalog()


_PUBLISHABLE_SQL = "SELECT 1 FROM {table} WHERE {name} = %s AND {archived} = %s"


def publishable_type_guard(name: str) -> tuple[str, list]:
    """A SQL condition that holds while ``name`` is a known, unarchived type (see ``raw_insert``)."""
    quote = connection.ops.quote_name
    sql = _PUBLISHABLE_SQL.format(table=quote(EventType._meta.db_table), name=quote("name"), archived=quote("archived"))
    return f"EXISTS ({sql})", [name, False]


def publishable_types(names: Iterable[object]) -> set[str]:
    """Which of ``names`` are known, unarchived types (one query for a batch, written as SQL: the ORM's
    compiling cost more than the query)."""
    wanted = sorted({name for name in names if isinstance(name, str)})
    if not wanted:
        return set()
    quote = connection.ops.quote_name
    table, name, archived = quote(EventType._meta.db_table), quote("name"), quote("archived")
    placeholders = ", ".join(["%s"] * len(wanted))
    sql = f"SELECT {name} FROM {table} WHERE {archived} = %s AND {name} IN ({placeholders})"  # noqa: S608 - identifiers
    with bound_cursor() as cursor:
        cursor.execute(sql, [False, *wanted])
        return {row[0] for row in cursor.fetchall()}


def is_publishable_type(name: str) -> bool:
    """Whether ``name`` is a known, unarchived type (plain SQL: this runs on every publish)."""
    quote = connection.ops.quote_name
    sql = _PUBLISHABLE_SQL.format(table=quote(EventType._meta.db_table), name=quote("name"), archived=quote("archived"))
    with connection.cursor() as cursor:
        cursor.execute(sql, [name, False])
        return cursor.fetchone() is not None


EVENT_COLUMNS = [field.attname for field in Event._meta.concrete_fields]


def event_with_key(tenant: Tenant, idempotency_key: str) -> Event | None:
    return Event.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()


def new_event(
    *,
    tenant: Tenant,
    type: str,
    data: dict[str, Any],
    idempotency_key: str | None = None,
    occurred_at: datetime | None = None,
    source: str = EventSource.APP,
    type_checked: bool = False,
    ordering_key: str | None = None,
) -> Event:
    """Validate and build an unsaved Event with its final body and ordering key (``events.ordering``).

    The data is checked against the type's schema as its mode says (``events.schemas``): ``breaks_schema``
    is set on an event that goes out although it broke it. Raises UnknownEventType (unless the caller
    already checked the type), InvalidPayload (SchemaViolation under ``enforce``) or PayloadTooLarge.
    """
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key or len(idempotency_key) > 200
    ):
        raise InvalidPayload("idempotency_key must be a non-empty string of at most 200 characters.")
    if not type_checked and not is_publishable_type(type):
        raise UnknownEventType(f"Unknown event type {type!r}; see the event-type catalog.")
    event = Event(tenant=tenant, event_type_id=type, data=data, idempotency_key=idempotency_key, source=source)
    event.occurred_at = occurred_at or timezone.now()
    event.body = render_body(
        event_id=event.id, event_type=type, occurred_at=event.occurred_at, tenant_id=tenant.pk, data=data
    )
    event.ordering_key = key_of(type, data, ordering_key)
    limit = setting("MAX_PAYLOAD_BYTES")
    size = len(event.body.encode())
    if size > limit:
        raise PayloadTooLarge(f"The event is {size} bytes; the limit is {limit} bytes.")
    event.breaks_schema = schemas.check(type, data)
    return event


def insert_event(event: Event) -> bool:
    """Insert a new event; False if its idempotency key was taken meanwhile (nothing written)."""
    if event.idempotency_key is None:
        raw_insert.insert([event], EVENT_COLUMNS)
        return True
    try:
        with transaction.atomic():  # a savepoint: a concurrent publish with the same key may win
            raw_insert.insert([event], EVENT_COLUMNS)
    except IntegrityError:
        return False
    return True
