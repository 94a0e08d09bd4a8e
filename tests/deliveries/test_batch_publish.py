"""``publish_many``: a batch of one tenant's events in one transaction, all or nothing unless partial."""

import pytest

from deliveries.models import Delivery, PublishTotal
from deliveries.services.batch_publishing import MAX_BATCH, BatchRefused, publish_many
from events.exceptions import InvalidPayload, UnknownEventType
from events.models import Event, EventType
from tests.factories import endpoint_for
from tests.support.db import db_state
from webhookhub import publish

pytestmark = pytest.mark.django_db


def _items(count: int, **extra) -> list[dict]:
    return [{"type": "message.received", "data": {"n": n}, **extra} for n in range(count)]


def test_a_batch_publishes_every_event_with_its_deliveries_in_order(tenant):
    messages = endpoint_for(tenant, event_types=["message.received"])
    everything = endpoint_for(tenant, event_types=["*"])
    items = [*_items(3), {"type": "chat.closed", "data": {"id": "c1"}}]

    results = publish_many(tenant=tenant, events=items)

    assert [r.created for r in results] == [True] * 4 and [r.error for r in results] == [None] * 4
    assert [r.event.data for r in results] == [item["data"] for item in items]
    assert [r.deliveries for r in results] == [2, 2, 2, 1]
    events = Event.objects.filter(tenant=tenant).order_by("created_at", "id")
    assert sorted(e.pk for e in events) == sorted(r.event.pk for r in results)
    by_event = {
        r.event.pk: sorted(Delivery.objects.filter(event=r.event).values_list("endpoint_id", flat=True))
        for r in results
    }
    assert by_event[results[0].event.pk] == sorted([messages.pk, everything.pk])
    assert by_event[results[3].event.pk] == [everything.pk]
    [total] = PublishTotal.objects.filter(tenant_id=tenant.pk)
    assert (total.events, total.deliveries) == (4, 7)


def test_one_bad_event_refuses_the_whole_batch_and_writes_nothing(tenant):
    endpoint_for(tenant)
    before = db_state()
    items = [*_items(2), {"type": "no.such_type", "data": {}}, {"type": "message.received", "data": "text"}]

    with pytest.raises(BatchRefused) as refused:
        publish_many(tenant=tenant, events=items)

    assert sorted(refused.value.errors) == [2, 3]
    assert isinstance(refused.value.errors[2], UnknownEventType)
    assert isinstance(refused.value.errors[3], InvalidPayload)
    assert db_state() == before


def test_an_archived_type_is_refused_like_an_unknown_one(tenant):
    endpoint_for(tenant)
    EventType.objects.filter(name="chat.closed").update(archived=True)
    before = db_state()

    with pytest.raises(BatchRefused) as refused:
        publish_many(tenant=tenant, events=[*_items(1), {"type": "chat.closed", "data": {"id": "c1"}}])

    assert list(refused.value.errors) == [1]
    assert isinstance(refused.value.errors[1], UnknownEventType)
    assert db_state() == before


def test_each_delivery_of_a_batch_starts_pending_and_due(tenant):
    endpoint_for(tenant)

    publish_many(tenant=tenant, events=_items(3))

    deliveries = list(Delivery.objects.all())
    assert len(deliveries) == 3
    assert {(d.status, d.attempt_count, d.lease_until, d.last_error) for d in deliveries} == {("pending", 0, None, "")}
    assert all(d.next_attempt_at is not None and d.created_at is not None for d in deliveries)


def test_a_partial_batch_publishes_the_good_events_and_says_why_for_the_others(tenant):
    endpoint_for(tenant)
    items = [_items(1)[0], {"type": "no.such_type", "data": {}}, {"type": "message.received"}]

    results = publish_many(tenant=tenant, events=items, partial=True)

    assert results[0].created and results[0].deliveries == 1
    assert isinstance(results[1].error, UnknownEventType) and results[1].event is None
    assert isinstance(results[2].error, InvalidPayload)
    assert Event.objects.filter(tenant=tenant).count() == 1


def test_idempotency_is_per_event_before_and_within_the_batch(tenant):
    endpoint_for(tenant)
    earlier = publish(tenant=tenant, type="message.received", data={"n": "earlier"}, idempotency_key="k1")
    items = [
        {"type": "message.received", "data": {"n": 1}, "idempotency_key": "k1"},  # used before
        {"type": "message.received", "data": {"n": 2}, "idempotency_key": "k2"},
        {"type": "message.received", "data": {"n": 3}, "idempotency_key": "k2"},  # used just before, in the batch
    ]

    results = publish_many(tenant=tenant, events=items)

    assert results[0].event.pk == earlier.pk and not results[0].created
    assert results[1].created and results[2].event.pk == results[1].event.pk and not results[2].created
    assert Event.objects.filter(tenant=tenant).count() == 2
    assert Delivery.objects.filter(event__tenant=tenant).count() == 2


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_batch_holds_one_to_the_maximum_of_events(tenant, count):
    with pytest.raises(InvalidPayload, match=f"1 to {MAX_BATCH}"):
        publish_many(tenant=tenant, events=_items(count))


def test_an_event_with_fields_it_does_not_know_is_refused(tenant):
    with pytest.raises(BatchRefused) as refused:
        publish_many(tenant=tenant, events=[{"type": "message.received", "data": {}, "colour": "blue"}])

    assert "optionally idempotency_key, occurred_at" in str(refused.value.errors[0])


def test_a_batch_rings_the_workers_once_after_it_commits(tenant, broker, django_capture_on_commit_callbacks):
    endpoint_for(tenant)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        publish_many(tenant=tenant, events=_items(5))

    assert len(callbacks) == 1
    assert broker.messages() == [("deliveries.drain", [])]


def test_with_notify_wake_ups_a_batch_notifies_once_naming_its_endpoints(tenant, wake_ups):
    first = endpoint_for(tenant)
    second = endpoint_for(tenant)

    publish_many(tenant=tenant, events=_items(5))

    assert wake_ups.heard() == [",".join(f"{pk}=" for pk in sorted([first.pk, second.pk]))]  # no owners yet
