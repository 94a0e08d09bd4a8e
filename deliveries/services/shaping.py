"""The bodies an event's deliveries send: the event's own envelope, or one ``Payload`` per distinct payload
shape among their endpoints (``subscriptions.payloads``), rendered once, when the deliveries are created.

A delivery whose endpoint's shape gives no body for this event (not a JSON object, too large) is created
failed, with the reason (``NOT_SHAPED``), and sends nothing; the event's other deliveries go as usual.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from deliveries.models import Delivery, DeliveryQuerySet, DeliveryStatus, Payload
from deliveries.services import ordering
from events.models import Event
from subscriptions.payloads import Shape, ShapeError, shape_of

NOT_SHAPED = "No body: "


@dataclass
class Bodies:
    """What an event's deliveries send besides the event's own body."""

    payloads: list[Payload] = field(default_factory=list)  # inserted before the deliveries that use them
    payload_ids: dict[str, str] = field(default_factory=dict)  # endpoint id -> its payload
    refused: dict[str, str] = field(default_factory=dict)  # endpoint id -> why its shape gave no body


def envelope_of(event: Event) -> dict[str, Any]:
    """What a shape reads: the standard envelope ``{id, type, timestamp, tenant_id, data}``, parsed from the
    event's body. Not from ``event.data`` as stored: PostgreSQL's jsonb keeps an object's keys in its own order,
    and a body made later (a preview, a replay) must list them as the one made at publishing did."""
    envelope: dict[str, Any] = json.loads(event.body)
    return envelope


def bodies_for(event: Event, endpoint_ids: Iterable[str], shapes: dict[str, Shape]) -> Bodies:
    """Render each distinct shape of these endpoints once for ``event``."""
    bodies = Bodies()
    if not shapes:
        return bodies
    made: dict[Shape, Payload | str] = {}
    envelope: dict[str, Any] | None = None
    for endpoint_id in endpoint_ids:
        shape = shapes.get(endpoint_id)
        if shape is None:
            continue
        if shape not in made:
            envelope = envelope or envelope_of(event)
            try:
                made[shape] = payload = Payload(event_id=event.id, body=shape.render(envelope))
                bodies.payloads.append(payload)
            except ShapeError as error:
                made[shape] = str(error)
        outcome = made[shape]
        if isinstance(outcome, Payload):
            bodies.payload_ids[endpoint_id] = outcome.pk
        else:
            bodies.refused[endpoint_id] = outcome
    return bodies


def new_deliveries(event: Event, endpoint_ids: list[str], bodies: Bodies, *, now: datetime) -> list[Delivery]:
    """The event's deliveries to these endpoints, each with its body; those whose shape gave none, failed."""
    if not bodies.payload_ids and not bodies.refused:  # every one sends the event's body
        return [Delivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now) for endpoint_id in endpoint_ids]
    deliveries = []
    for endpoint_id in endpoint_ids:
        delivery = Delivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now)
        delivery.payload_id = bodies.payload_ids.get(endpoint_id)
        if endpoint_id in bodies.refused:
            delivery.status, delivery.next_attempt_at, delivery.completed_at = DeliveryStatus.FAILED, None, now
            delivery.last_error = NOT_SHAPED + bodies.refused[endpoint_id]
        deliveries.append(delivery)
    return deliveries


def with_bodies_again(chosen: DeliveryQuerySet) -> DeliveryQuerySet:
    """Before a resend or replay: deliveries created failed because their endpoint's shape gave no body get one
    from the endpoint's shape now (an admin may have fixed it); those it still gives none are left out. A keyed
    one to an ordered endpoint takes its key's next number: it joins the key's queue at the back. Locked while
    this runs, so retention cannot purge them meanwhile."""
    still_failing: list[int] = []
    now = timezone.now()
    with transaction.atomic():
        unshaped = chosen.filter(payload__isnull=True, attempt_count=0, last_error__startswith=NOT_SHAPED)
        for delivery in unshaped.select_for_update(of=("self",)).select_related("event", "endpoint"):
            endpoint = delivery.endpoint
            shape = shape_of(endpoint.pk, endpoint.payload_format, endpoint.payload_shape, endpoint.verification)
            try:
                body = shape.render(envelope_of(delivery.event)) if shape is not None else None
            except ShapeError:
                still_failing.append(delivery.pk)
                continue
            if body is not None:  # else the standard envelope now: the event's own body
                delivery.payload = Payload.objects.create(event_id=delivery.event_id, body=body)
            if endpoint.ordered and delivery.event.ordering_key is not None:
                ordering.number([delivery], ordered=frozenset({endpoint.pk}), now=now)
            delivery.save(update_fields=["payload", "ordering_key", "sequence"])
    return chosen.exclude(pk__in=still_failing) if still_failing else chosen
