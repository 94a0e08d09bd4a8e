"""``publish_many``: up to ``MAX_BATCH`` events of one tenant in one transaction (a campaign's fan-out).

Every item is validated first. By default the batch is all or nothing: one bad item refuses the
batch (``BatchRefused``, naming each bad item) and nothing is written. With ``partial=True`` the
good items are published and each bad one gets its error. Idempotency is per item: an item
whose key was already used (before, or earlier in the same batch) gets the first event and
writes nothing. The writes are two multi-row inserts (events, then deliveries), the publish
totals and, with NOTIFY wake-ups, one notification: the cost of one publish, shared by all.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from deliveries.models import Delivery, DeliveryStatus, Payload
from deliveries.numbers.tallying import count_published
from deliveries.services import doorbell, ordering, wakeups
from deliveries.services.publishing import DELIVERY_COLUMNS, IDEMPOTENCY_CONFLICT, PAYLOAD_COLUMNS, resolve_tenant
from deliveries.services.shaping import NOT_SHAPED, bodies_for
from events.exceptions import InvalidPayload, PublishError, UnknownEventType
from events.models import Event, EventSource
from events.services import EVENT_COLUMNS, new_event, publishable_types
from ground import raw_insert
from subscriptions.selectors import routes

MAX_BATCH = 100
_ITEM_KEYS = frozenset({"type", "data", "idempotency_key", "occurred_at", "ordering_key"})


class BatchRefused(PublishError):
    """Nothing was published: ``errors`` maps the index of each bad item to why."""

    def __init__(self, errors: dict[int, PublishError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} of the events cannot be published; nothing was written.")


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome: its event (``created`` False: an earlier event with its idempotency key), or its error."""

    event: Event | None = None
    created: bool = False
    deliveries: int = 0
    error: PublishError | None = None


@dataclass
class _Batch:
    tenant: Tenant
    events: dict[int, Event] = field(default_factory=dict)  # index -> event to insert
    repeats: dict[int, int] = field(default_factory=dict)  # index -> index of the item with its key, earlier
    existing: dict[int, Event] = field(default_factory=dict)  # index -> event stored before with its key
    errors: dict[int, PublishError] = field(default_factory=dict)


def publish_many(
    *, tenant: Tenant | str, events: Sequence[Mapping[str, Any]], partial: bool = False, source: str = EventSource.APP
) -> list[ItemResult]:
    """Publish ``events`` (mappings with ``type``, ``data``, optional ``idempotency_key``, ``occurred_at`` and
    ``ordering_key``); returns one result per item, in order. Raises ``BatchRefused`` (nothing written) unless
    ``partial``."""
    if not 1 <= len(events) <= MAX_BATCH:
        raise InvalidPayload(f"A batch holds 1 to {MAX_BATCH} events, not {len(events)}.")
    batch = _validated(resolve_tenant(tenant), events, source)
    if batch.errors and not partial:
        raise BatchRefused(batch.errors)
    with transaction.atomic():
        inserted, delivered = _write(batch)
    if delivered and not wakeups.notifying():
        transaction.on_commit(doorbell.ring)
    return _results(batch, inserted, delivered, len(events))


def _validated(tenant: Tenant, items: Sequence[Mapping[str, Any]], source: str) -> _Batch:
    batch = _Batch(tenant)
    known = publishable_types({item.get("type") for item in items if isinstance(item, Mapping)})
    first_with_key: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            event = _event(tenant, item, known, source)
        except PublishError as error:
            batch.errors[index] = error
            continue
        key = event.idempotency_key
        if key is not None and key in first_with_key:
            batch.repeats[index] = first_with_key[key]
            continue
        if key is not None:
            first_with_key[key] = index
        batch.events[index] = event
    stored = Event.objects.filter(tenant=tenant, idempotency_key__in=list(first_with_key)) if first_with_key else ()
    for event in stored:
        index = first_with_key[event.idempotency_key or ""]
        batch.existing[index] = event
        del batch.events[index]
    return batch


def _event(tenant: Tenant, item: Mapping[str, Any], known: set[str], source: str) -> Event:
    if not isinstance(item, Mapping) or not {"type", "data"} <= item.keys() or item.keys() - _ITEM_KEYS:
        raise InvalidPayload(
            "Each event is an object with type and data, and optionally idempotency_key, occurred_at, ordering_key."
        )
    if item["type"] not in known:
        raise UnknownEventType(f"Unknown event type {item['type']!r}; see the event-type catalog.")
    if not isinstance(item["data"], dict):
        raise InvalidPayload("data must be a JSON object.")
    occurred_at = item.get("occurred_at")
    if occurred_at is not None and not isinstance(occurred_at, datetime):
        raise InvalidPayload("occurred_at must be a datetime.")
    return new_event(
        tenant=tenant,
        type=item["type"],
        data=item["data"],
        idempotency_key=item.get("idempotency_key"),
        occurred_at=occurred_at,
        source=source,
        type_checked=True,
        ordering_key=item.get("ordering_key"),
    )


def _write(batch: _Batch) -> tuple[set[str], dict[str, int]]:
    """Insert the batch's new events and their deliveries; (ids inserted, deliveries per event id)."""
    if not batch.events:
        return set(), {}
    fresh = list(batch.events.values())
    inserted = set(raw_insert.insert(fresh, EVENT_COLUMNS, returning="id", conflict=IDEMPOTENCY_CONFLICT))
    current = routes(batch.tenant, fresh=True)
    now = timezone.now()
    event_ids: list[str] = []
    endpoint_ids: list[str] = []
    keys: list[tuple[str, str | None]] = []  # (endpoint, ordering key) of each delivery to an ordered endpoint
    payloads: list[Payload] = []
    payload_ids: list[str | None] = []  # of each delivery: its body, when its endpoint has a payload shape
    refusals: list[str | None] = []  # of each delivery: why its endpoint's shape gave no body
    delivered: dict[str, int] = {}
    for event in fresh:
        if event.id in inserted:
            wanting = current.endpoint_ids(event.event_type_id, event.data)
            bodies = bodies_for(event, wanting, current.shapes)
            event_ids += [event.id] * len(wanting)
            endpoint_ids += wanting
            keys += [
                (pk, event.ordering_key if pk in current.ordered and pk not in bodies.refused else None)
                for pk in wanting
            ]
            payloads += bodies.payloads
            payload_ids += [bodies.payload_ids.get(pk) for pk in wanting]
            refusals += [bodies.refused.get(pk) for pk in wanting]
            delivered[event.id] = len(wanting)
    varying: dict[str, list[Any]] = {"event_id": event_ids, "endpoint_id": endpoint_ids}
    if any(key is not None for _, key in keys):
        varying |= {"ordering_key": [key for _, key in keys], "sequence": ordering.numbers(keys, now=now)}
    if payloads:
        for start in range(0, len(payloads), 1000):
            raw_insert.insert(payloads[start : start + 1000], PAYLOAD_COLUMNS)
        varying["payload_id"] = payload_ids
    if any(refusals):
        varying |= _failed_at_once(refusals, now)
    pending = Delivery(next_attempt_at=now)  # each delivery: this, for one event and endpoint
    for start in range(0, len(event_ids), 1000):
        chunk = slice(start, start + 1000)
        raw_insert.insert_copies(pending, DELIVERY_COLUMNS, {name: values[chunk] for name, values in varying.items()})
    violations = sum(event.breaks_schema for event in fresh if event.id in inserted)
    count_published(batch.tenant.pk, len(event_ids), events=len(inserted), schema_violations=violations)
    if event_ids and wakeups.notifying():
        wakeups.notify(set(endpoint_ids))  # sent when the transaction commits
    _taken_meanwhile(batch, inserted)
    return inserted, delivered


def _failed_at_once(refusals: list[str | None], now: datetime) -> dict[str, list[Any]]:
    """The columns that make the deliveries whose endpoint's shape gave no body failed from the start."""
    return {
        "status": [DeliveryStatus.FAILED if why else DeliveryStatus.PENDING for why in refusals],
        "next_attempt_at": [None if why else now for why in refusals],
        "completed_at": [now if why else None for why in refusals],
        "last_error": [NOT_SHAPED + why if why else "" for why in refusals],
    }


def _taken_meanwhile(batch: _Batch, inserted: set[str]) -> None:
    """Events a concurrent publish with the same idempotency key beat us to: theirs is the event."""
    lost = {index: event for index, event in batch.events.items() if event.id not in inserted}
    if not lost:
        return
    keys = {event.idempotency_key: index for index, event in lost.items()}
    for event in Event.objects.filter(tenant=batch.tenant, idempotency_key__in=list(keys)):
        index = keys[event.idempotency_key]
        batch.existing[index] = event
        del batch.events[index]


def _results(batch: _Batch, inserted: set[str], delivered: dict[str, int], count: int) -> list[ItemResult]:
    results: list[ItemResult] = []
    for index in range(count):
        if index in batch.errors:
            results.append(ItemResult(error=batch.errors[index]))
        elif index in batch.events:
            event = batch.events[index]
            event._state.adding = False
            results.append(ItemResult(event=event, created=True, deliveries=delivered.get(event.id, 0)))
        elif index in batch.existing:
            results.append(ItemResult(event=batch.existing[index]))
        else:  # its key was used by an earlier item of the batch: that item's event
            results.append(ItemResult(event=results[batch.repeats[index]].event))
    return results
