"""Many rows in one INSERT: on PostgreSQL as arrays (``unnest``), with every value stored as the ORM would."""

from datetime import UTC, datetime
from http import HTTPStatus

import pytest

from deliveries.models import Attempt, Delivery
from events.models import Event
from ground import raw_insert
from tests.factories import endpoint_for
from webhookhub import publish

pytestmark = pytest.mark.django_db


def test_many_rows_keep_every_type_and_conflicts_are_skipped(tenant):
    endpoint = endpoint_for(tenant)
    delivery = Delivery.objects.get(event=publish(tenant=tenant, type="message.received", data={}))
    assert delivery.endpoint_id == endpoint.pk
    started = datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)
    attempts = [
        Attempt(
            delivery=delivery,
            number=n,
            started_at=started,
            duration_ms=n * 10,
            request_headers={"content-type": "application/json", "quote": 'a "b" \\ c'},
            status_code=None if n == 3 else 200,
            response_headers={},
            response_body="{\"é\": [1, 2]}\n'x'",
            error="" if n != 3 else "Connection refused",
            outcome="success",
            request_made=n != 3,
        )
        for n in (1, 2, 3)
    ]
    fields = [field.attname for field in Attempt._meta.concrete_fields if not field.primary_key]

    raw_insert.insert(attempts, fields)

    stored = list(Attempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.duration_ms, a.status_code, a.request_made, a.error) for a in stored] == [
        (1, 10, 200, True, ""),
        (2, 20, 200, True, ""),
        (3, 30, None, False, "Connection refused"),
    ]
    assert {a.started_at for a in stored} == {started}
    assert stored[0].request_headers == {"content-type": "application/json", "quote": 'a "b" \\ c'}
    assert stored[2].response_body == "{\"é\": [1, 2]}\n'x'"


def test_many_rows_with_a_conflict_return_only_those_inserted(tenant):
    first = publish(tenant=tenant, type="message.received", data={}, idempotency_key="k1")
    events = [
        Event(
            tenant=tenant,
            event_type_id="message.received",
            data={"n": n},
            body="{}",
            idempotency_key=key,
            occurred_at=first.occurred_at,
        )
        for n, key in enumerate(["k1", "k2", None])
    ]
    fields = [field.attname for field in Event._meta.concrete_fields]  # the id too: it is made in Python

    inserted = raw_insert.insert(
        events, fields, returning="id", conflict=(["tenant_id", "idempotency_key"], "idempotency_key IS NOT NULL")
    )

    assert sorted(inserted) == sorted([events[1].id, events[2].id])  # "k1" was taken
    assert Event.objects.get(pk=events[1].id).data == {"n": 1}


def test_values_a_field_would_convert_are_stored_as_the_orm_stores_them(tenant):
    endpoint_for(tenant)
    delivery = Delivery.objects.get(event=publish(tenant=tenant, type="message.received", data={}))
    started = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def attempt(number, duration_ms, status_code, error) -> Attempt:
        return Attempt(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=duration_ms,
            request_headers={},
            status_code=status_code,
            response_headers={},
            response_body="",
            error=error,
            outcome="success",
            request_made=True,
        )

    # An int subclass in an integer column, a number in a text column, beside plain values of the same columns.
    attempts = [attempt(1, 10, 200, ""), attempt(2, True, HTTPStatus.ACCEPTED, 404)]
    fields = [field.attname for field in Attempt._meta.concrete_fields if not field.primary_key]

    raw_insert.insert(attempts, fields)

    stored = (
        Attempt.objects.filter(delivery=delivery).order_by("number").values_list("duration_ms", "status_code", "error")
    )
    assert list(stored) == [(10, 200, ""), (1, 202, "404")]


def test_copies_of_a_template_differ_only_in_the_varying_columns(tenant):
    first, second = endpoint_for(tenant), endpoint_for(tenant)
    events = [publish(tenant=tenant, type="chat.closed", data={"n": n}) for n in range(3)]
    Delivery.objects.all().delete()
    due = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    fields = [field.attname for field in Delivery._meta.concrete_fields if not field.primary_key]
    event_ids = [events[0].pk, events[1].pk, events[2].pk]
    endpoint_ids = [first.pk, second.pk, first.pk]

    raw_insert.insert_copies(
        Delivery(next_attempt_at=due, last_error="copied"), fields, {"event_id": event_ids, "endpoint_id": endpoint_ids}
    )

    stored = Delivery.objects.order_by("event_id")
    assert sorted(stored.values_list("event_id", "endpoint_id")) == sorted(zip(event_ids, endpoint_ids, strict=True))
    assert {(d.status, d.attempt_count, d.next_attempt_at, d.lease_until, d.last_error) for d in stored} == {
        ("pending", 0, due, None, "copied")
    }
    assert len({d.created_at for d in stored}) == 1 and None not in {d.created_at for d in stored}


def test_a_varying_value_the_field_would_convert_is_stored_as_the_orm_stores_it(tenant):
    endpoint = endpoint_for(tenant)
    events = [publish(tenant=tenant, type="chat.closed", data={"n": n}) for n in range(2)]
    Delivery.objects.all().delete()
    fields = ["event_id", "endpoint_id", "status", "attempt_count", "last_error", "created_at"]

    raw_insert.insert_copies(
        Delivery(),
        fields,
        {"event_id": [e.pk for e in events], "endpoint_id": [endpoint.pk] * 2, "last_error": [404, "plain"]},
    )

    assert sorted(Delivery.objects.values_list("last_error", flat=True)) == ["404", "plain"]


def test_a_column_its_field_sets_itself_cannot_vary(tenant):
    with pytest.raises(ValueError, match="sets itself"):
        raw_insert.insert_copies(Delivery(), ["event_id", "created_at"], {"created_at": [datetime.now(UTC)] * 2})
    assert not Delivery.objects.exists()
