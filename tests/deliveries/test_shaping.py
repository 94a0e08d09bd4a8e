"""Payload shapes at publish time: one body per distinct shape of an event's endpoints, stored as ``Payload`` rows
(single publish and ``publish_many``, the one-statement path and the transaction path), purged with their
events, and loaded with a claim so that sending reads no more rows."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, Payload
from deliveries.preview import preview
from deliveries.services.actions import replay, resend
from deliveries.services.retention import purge
from deliveries.services.sending import claim
from deliveries.services.shaping import NOT_SHAPED, bodies_for
from events.models import Event
from subscriptions.payloads import TOKEN_SLOT, fill_token
from subscriptions.selectors import routes
from subscriptions.services import update_endpoint
from tests.factories import endpoint_for
from webhookhub import publish, publish_many

pytestmark = pytest.mark.django_db

MESSAGE = {"id": "msg_1", "text": "Is my order ready?", "chat_id": "chat_1"}
SHAPE_A = "{event: type, text: data.text}"
SHAPE_B = "{kind: type, message: data}"
# Passes save-time validation (the catalog's message.received example has a contact object) but gives null for
# an event whose data has no contact.
NEEDS_CONTACT = "data.contact.{name: name, phone: phone_number}"


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _payloads(event: Event) -> list[Payload]:
    return list(Payload.objects.filter(event_id=event.pk))


def _delivery(event: Event, endpoint) -> Delivery:
    return Delivery.objects.select_related("event", "payload").get(event=event, endpoint=endpoint)


def test_bodies_for_renders_one_body_per_distinct_shape(tenant):
    standard = endpoint_for(tenant)
    a1, a2 = (
        endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A),
        endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A),
    )
    b = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_B)
    heyy1, heyy2 = endpoint_for(tenant, payload_format="heyy"), endpoint_for(tenant, payload_format="heyy")
    heymarket1, heymarket2 = (
        endpoint_for(tenant, payload_format="heymarket"),
        endpoint_for(tenant, payload_format="heymarket"),
    )
    everyone = [standard, a1, a2, b, heyy1, heyy2, heymarket1, heymarket2]
    event = publish(tenant=tenant, type="message.received", data=MESSAGE, endpoint_ids=[])

    bodies = bodies_for(event, [e.pk for e in everyone], routes(tenant, fresh=True).shapes)

    assert bodies.refused == {}
    assert standard.pk not in bodies.payload_ids  # the event's own body
    ids = bodies.payload_ids
    assert ids[a1.pk] == ids[a2.pk] and ids[heyy1.pk] == ids[heyy2.pk]
    # A Heymarket body carries its endpoint's webhook id: one body per Heymarket endpoint.
    assert len({ids[a1.pk], ids[b.pk], ids[heyy1.pk], ids[heymarket1.pk], ids[heymarket2.pk]}) == 5
    assert len(bodies.payloads) == 5 and {p.pk for p in bodies.payloads} == set(ids.values())
    assert {p.event_id for p in bodies.payloads} == {event.pk}
    body = {p.pk: p.body for p in bodies.payloads}
    assert body[ids[a1.pk]] == _compact({"event": "message.received", "text": MESSAGE["text"]})
    assert json.loads(body[ids[b.pk]]) == {"kind": "message.received", "message": MESSAGE}
    assert json.loads(body[ids[heyy1.pk]]) == {
        "id": event.pk,
        "tenantId": tenant.pk,
        "event": "message.received",
        "data": MESSAGE,
    }
    heymarket_body = body[ids[heymarket1.pk]]
    assert TOKEN_SLOT in heymarket_body and heymarket1.verification_token not in heymarket_body
    filled = json.loads(fill_token(heymarket_body, heymarket1.verification_token))
    assert (filled["token"], filled["type"], filled["event_data"]) == (
        heymarket1.verification_token,
        "message_recieved",
        MESSAGE,
    )


def test_bodies_for_refuses_only_the_endpoints_whose_shape_gives_no_object(tenant):
    broken1 = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=NEEDS_CONTACT
    )
    broken2 = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=NEEDS_CONTACT
    )
    fine = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    event = publish(tenant=tenant, type="message.received", data=MESSAGE, endpoint_ids=[])

    bodies = bodies_for(event, [broken1.pk, broken2.pk, fine.pk], routes(tenant, fresh=True).shapes)

    assert set(bodies.refused) == {broken1.pk, broken2.pk}
    assert "null" in bodies.refused[broken1.pk]
    assert list(bodies.payload_ids) == [fine.pk] and len(bodies.payloads) == 1


def test_publish_stores_one_payload_per_distinct_shape_and_links_each_delivery(tenant):
    standard = endpoint_for(tenant)
    a1 = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    a2 = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    heyy = endpoint_for(tenant, payload_format="heyy")

    event = publish(tenant=tenant, type="message.received", data=MESSAGE)

    [shaped, heyy_body] = sorted(_payloads(event), key=lambda p: p.body.startswith('{"id"'))
    assert shaped.body == _compact({"event": "message.received", "text": MESSAGE["text"]})
    assert json.loads(heyy_body.body)["id"] == event.pk
    assert _delivery(event, standard).payload_id is None
    assert _delivery(event, standard).sent_body() == event.body
    assert _delivery(event, a1).payload_id == _delivery(event, a2).payload_id == shaped.pk
    assert _delivery(event, a1).sent_body() == shaped.body
    assert _delivery(event, heyy).sent_body() == heyy_body.body
    assert {d.status for d in Delivery.objects.filter(event=event)} == {DeliveryStatus.PENDING}


def test_publish_to_standard_endpoints_stores_no_payload_in_one_statement(tenant, django_assert_num_queries):
    endpoint_for(tenant)
    endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data=MESSAGE)  # the routes are cached from here on

    if connection.vendor == "postgresql":
        with django_assert_num_queries(1):  # the one-statement path: event, deliveries and totals
            event = publish(tenant=tenant, type="message.received", data=MESSAGE)
    else:
        event = publish(tenant=tenant, type="message.received", data=MESSAGE)

    assert _payloads(event) == []
    assert list(Delivery.objects.filter(event=event).values_list("payload_id", flat=True)) == [None, None]


def test_a_shape_set_after_the_routes_were_cached_is_stored(tenant):
    """On PostgreSQL the cached routes say "no shape": the one statement is refused by its guard (the endpoint
    changed), and the publish goes again on fresh routes, through the transaction that stores the body."""
    endpoint = endpoint_for(tenant)
    first = publish(tenant=tenant, type="message.received", data=MESSAGE)
    update_endpoint(endpoint=endpoint, payload_format="custom", payload_shape=SHAPE_A)

    event = publish(tenant=tenant, type="message.received", data=MESSAGE)

    assert _payloads(first) == []
    [payload] = _payloads(event)
    assert payload.body == _compact({"event": "message.received", "text": MESSAGE["text"]})
    assert _delivery(event, endpoint).payload_id == payload.pk


def test_a_shape_giving_no_body_fails_its_delivery_at_publish(tenant):
    broken = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=NEEDS_CONTACT
    )
    standard = endpoint_for(tenant)

    event = publish(tenant=tenant, type="message.received", data=MESSAGE)

    failed = _delivery(event, broken)
    assert (failed.status, failed.attempt_count, failed.next_attempt_at) == (DeliveryStatus.FAILED, 0, None)
    assert failed.completed_at is not None and failed.payload_id is None
    assert failed.last_error.startswith(NOT_SHAPED) and "null" in failed.last_error
    assert _delivery(event, standard).status == DeliveryStatus.PENDING
    assert _payloads(event) == []


def test_publish_many_stores_each_events_payloads(tenant):
    standard = endpoint_for(tenant)
    a1 = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    a2 = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    heyy = endpoint_for(tenant, payload_format="heyy")
    broken = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=NEEDS_CONTACT
    )
    items = [
        {"type": "message.received", "data": {"text": "one"}},
        {"type": "message.received", "data": {"text": "two", "contact": {"name": "Ana", "phone_number": "+1555"}}},
        {"type": "chat.closed", "data": {"id": "chat_1"}},
    ]

    results = publish_many(tenant=tenant, events=items)

    one, two, closed = (result.event for result in results)
    assert [result.deliveries for result in results] == [5, 5, 4]
    assert len(_payloads(one)) == 2  # SHAPE_A and heyy; the broken shape gave none
    assert len(_payloads(two)) == 3  # ... and here it gave one
    assert len(_payloads(closed)) == 2
    for event, text in ((one, "one"), (two, "two")):
        assert _delivery(event, a1).payload_id == _delivery(event, a2).payload_id
        assert _delivery(event, a1).sent_body() == _compact({"event": "message.received", "text": text})
        assert json.loads(_delivery(event, heyy).sent_body())["data"]["text"] == text
        assert _delivery(event, standard).payload_id is None
    assert _delivery(two, broken).sent_body() == _compact({"name": "Ana", "phone": "+1555"})
    assert _delivery(two, broken).status == DeliveryStatus.PENDING
    refused = _delivery(one, broken)
    assert (refused.status, refused.payload_id) == (DeliveryStatus.FAILED, None)
    assert refused.last_error.startswith(NOT_SHAPED)
    assert _delivery(closed, a1).sent_body() == _compact({"event": "chat.closed", "text": None})


def test_retention_purges_payloads_with_their_events(tenant):
    endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    endpoint_for(tenant, payload_format="heyy")
    old = publish(tenant=tenant, type="message.received", data=MESSAGE)
    young = publish(tenant=tenant, type="message.received", data=MESSAGE)
    Delivery.objects.update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, completed_at=timezone.now())
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    assert len(_payloads(old)) == len(_payloads(young)) == 2

    purged = purge(before=timezone.now() - timedelta(days=30))

    assert (purged.events, purged.deliveries) == (1, 2)
    assert _payloads(old) == []
    assert len(_payloads(young)) == 2


def test_a_claim_loads_every_body_it_sends(tenant, django_assert_num_queries):
    standard = endpoint_for(tenant)
    custom = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE_A)
    heymarket = endpoint_for(tenant, payload_format="heymarket")
    event = publish(tenant=tenant, type="message.received", data=MESSAGE)

    deliveries, _ = claim(owner="test", now=timezone.now(), lease_seconds=30, capacity=10)

    assert len(deliveries) == 3
    sent = {}
    with django_assert_num_queries(0):
        for delivery in deliveries:
            sent[delivery.endpoint_id] = fill_token(delivery.sent_body(), delivery.endpoint.verification_token)
    assert sent[standard.pk] == event.body
    assert sent[custom.pk] == _compact({"event": "message.received", "text": MESSAGE["text"]})
    assert json.loads(sent[heymarket.pk])["token"] == heymarket.verification_token


def test_resend_and_replay_give_a_body_once_the_shape_gives_one(tenant):
    broken = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=NEEDS_CONTACT
    )
    first = _delivery(publish(tenant=tenant, type="message.received", data=MESSAGE), broken)
    second = _delivery(publish(tenant=tenant, type="message.received", data=MESSAGE), broken)

    assert resend(first).status == DeliveryStatus.FAILED  # still no body: left as it was
    assert replay(endpoint=broken, statuses=["failed"], since=first.created_at, until=timezone.now()) == 0
    update_endpoint(endpoint=broken, payload_shape="{text: data.text, contact: data.contact}")

    assert resend(first).status == DeliveryStatus.PENDING
    assert replay(endpoint=broken, statuses=["failed"], since=first.created_at, until=timezone.now()) == 1

    fixed = _compact({"text": MESSAGE["text"], "contact": None})
    for delivery in (first, second):
        delivery = _delivery(delivery.event, broken)
        assert (delivery.status, delivery.sent_body()) == (DeliveryStatus.PENDING, fixed)
    assert Payload.objects.count() == 2


def test_preview_shows_the_stored_body_byte_for_byte(tenant):
    """What a preview shows is what is sent: the body stored at publish, keys in the order they were published."""
    heyy = endpoint_for(tenant, payload_format="heyy")
    custom = endpoint_for(tenant, payload_format="custom", payload_shape="{message: data}")
    data = {"zeta": 1, "alpha": {"long_key": 1, "k": 2}, "b": 3}  # not in PostgreSQL's jsonb order of keys
    event = publish(tenant=tenant, type="message.received", data=data)

    for endpoint in (heyy, custom):
        [item] = preview(endpoint, now=timezone.now())
        sent = _delivery(event, endpoint).sent_body()
        assert json.loads(sent)["data" if endpoint is heyy else "message"] == data
        assert item.body == sent


def test_a_keyed_delivery_given_its_body_late_joins_its_keys_queue_at_the_back(tenant):
    endpoint = endpoint_for(
        tenant, event_types=["message.received"], ordered=True, payload_format="custom", payload_shape="data.contact"
    )
    broken = publish(tenant=tenant, type="message.received", data={**MESSAGE, "contact": "not an object"})
    update_endpoint(endpoint=endpoint, payload_shape="{text: data.text}")
    later = publish(tenant=tenant, type="message.received", data=MESSAGE)
    refused = Delivery.objects.get(event=broken)
    assert (refused.status, refused.sequence) == (DeliveryStatus.FAILED, None)

    replay(
        endpoint=endpoint,
        statuses=[DeliveryStatus.FAILED],
        since=refused.created_at - timedelta(seconds=1),
        until=timezone.now() + timedelta(seconds=1),
    )

    refused.refresh_from_db()
    after = Delivery.objects.get(event=later)
    assert refused.status == DeliveryStatus.PENDING and refused.sent_body() == '{"text":"Is my order ready?"}'
    assert (refused.ordering_key, after.ordering_key) == ("chat_1", "chat_1")
    assert refused.sequence > after.sequence
