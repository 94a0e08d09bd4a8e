"""Event data checked against its type's JSON Schema when it is published (``events.schemas``): off, warn and
enforce, the deployment's mode and a type's own, single and batch publishing, the warning in the logs."""

import logging

import pytest
from django.db.models import Sum

from deliveries.models import Delivery, Payload, PublishTotal
from deliveries.services.batch_publishing import BatchRefused, publish_many
from events.exceptions import SchemaViolation
from events.models import Event, EventType, SchemaMode
from tests.factories import endpoint_for
from tests.support.db import db_state
from tests.support.receiver import Reply
from webhookhub import publish

pytestmark = pytest.mark.django_db

GOOD = {"id": "msg_1", "direction": "inbound", "chat_id": "chat_1", "text": "hi"}
# No chat_id (required), a direction that is not one of the two (enum).
BAD = {"id": "msg_2", "direction": "sideways-SECRET-VALUE", "text": "hi"}


def _deployment_mode(settings, mode: str) -> None:
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "SCHEMA_MODE": mode}


def _type_mode(name: str, mode: str) -> None:
    event_type = EventType.objects.get(name=name)
    event_type.schema_mode = mode
    event_type.save()


def _totals() -> tuple[int, int, int]:
    sums = PublishTotal.objects.aggregate(e=Sum("events"), d=Sum("deliveries"), v=Sum("schema_violations"))
    return sums["e"] or 0, sums["d"] or 0, sums["v"] or 0


def _written() -> tuple[dict, int, tuple[int, int, int]]:
    return db_state(), Payload.objects.count(), _totals()


def _pairs(violation: SchemaViolation) -> list[tuple[str, str]]:
    return [(v.path, v.rule) for v in violation.violations]


# --- enforce ----------------------------------------------------------------------------------------------


def test_enforce_refuses_bad_data_naming_each_path_and_rule_and_writes_nothing(settings, tenant):
    _deployment_mode(settings, "enforce")
    endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data=GOOD)  # totals exist: "unchanged" below is not trivial
    before = _written()
    assert before[2] == (1, 1, 0)

    with pytest.raises(SchemaViolation) as refused:
        publish(tenant=tenant, type="message.received", data=BAD)

    assert refused.value.event_type == "message.received"
    assert _pairs(refused.value) == [("data.chat_id", "required"), ("data.direction", "enum")]
    message = str(refused.value)
    assert "data.chat_id: is required (rule: required)" in message
    assert "data.direction" in message and "(rule: enum)" in message
    assert _written() == before
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


def test_enforce_names_a_nested_path_and_a_type_rule(settings, tenant):
    _deployment_mode(settings, "enforce")

    with pytest.raises(SchemaViolation) as refused:
        publish(tenant=tenant, type="message.received", data={**GOOD, "contact": {"name": 42}})

    assert _pairs(refused.value) == [("data.contact.id", "required"), ("data.contact.name", "type")]
    assert Event.objects.count() == 0


def test_enforce_publishes_data_that_fits_the_schema(settings, tenant):
    _deployment_mode(settings, "enforce")
    endpoint = endpoint_for(tenant)

    event = publish(tenant=tenant, type="message.received", data=GOOD)

    assert Event.objects.get(pk=event.pk).data == GOOD
    assert list(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == [endpoint.pk]
    assert _totals() == (1, 1, 0)


# --- warn -------------------------------------------------------------------------------------------------


def test_warn_publishes_bad_data_and_counts_one_violation(settings, tenant):
    _deployment_mode(settings, "warn")
    endpoint = endpoint_for(tenant)

    event = publish(tenant=tenant, type="message.received", data=BAD)

    assert event.breaks_schema is True
    assert Event.objects.get(pk=event.pk).data == BAD
    assert list(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == [endpoint.pk]
    assert _totals() == (1, 1, 1)


def test_warn_counts_nothing_for_data_that_fits(settings, tenant):
    _deployment_mode(settings, "warn")
    endpoint_for(tenant)

    event = publish(tenant=tenant, type="message.received", data=GOOD)

    assert event.breaks_schema is False
    assert _totals() == (1, 1, 0)


def test_warn_is_the_default_mode(settings, tenant):
    settings.WEBHOOKHUB = {key: value for key, value in settings.WEBHOOKHUB.items() if key != "SCHEMA_MODE"}

    publish(tenant=tenant, type="message.received", data=BAD)
    publish(tenant=tenant, type="message.received", data=GOOD)

    assert _totals() == (2, 0, 1)


def test_the_warning_names_the_path_and_rule_but_not_the_data(settings, tenant, caplog):
    _deployment_mode(settings, "warn")

    with caplog.at_level(logging.WARNING, logger="events.schemas"):
        publish(tenant=tenant, type="message.received", data=BAD)

    records = [record for record in caplog.records if record.name == "events.schemas"]
    assert [(record.path, record.rule) for record in records] == [
        ("data.chat_id", "required"),
        ("data.direction", "enum"),
    ]
    lines = [record.getMessage() for record in records]
    assert lines[1] == ("Published message.received although its data breaks the schema at data.direction (rule: enum)")
    assert all(record.levelno == logging.WARNING for record in records)
    assert "SECRET-VALUE" not in caplog.text
    assert all("SECRET-VALUE" not in str(vars(record)) for record in records)


# --- off --------------------------------------------------------------------------------------------------


def test_off_checks_nothing(settings, tenant, caplog):
    _deployment_mode(settings, "off")

    with caplog.at_level(logging.WARNING, logger="events.schemas"):
        event = publish(tenant=tenant, type="message.received", data=BAD)

    assert event.breaks_schema is False
    assert Event.objects.filter(pk=event.pk).exists()
    assert _totals() == (1, 0, 0)
    assert [record for record in caplog.records if record.name == "events.schemas"] == []


# --- a type's own mode ---------------------------------------------------------------------------------------


def test_a_types_own_mode_overrides_the_deployments_at_once_after_it_is_saved(settings, tenant):
    _deployment_mode(settings, "warn")
    publish(tenant=tenant, type="message.received", data=BAD)  # read and cached in this process: warn
    assert _totals() == (1, 0, 1)

    _type_mode("message.received", SchemaMode.ENFORCE)
    with pytest.raises(SchemaViolation):
        publish(tenant=tenant, type="message.received", data=BAD)
    assert Event.objects.count() == 1

    _type_mode("message.received", SchemaMode.OFF)
    publish(tenant=tenant, type="message.received", data=BAD)
    assert _totals() == (2, 0, 1)  # published, not counted

    _type_mode("message.received", "")  # back to the deployment's
    publish(tenant=tenant, type="message.received", data=BAD)
    assert _totals() == (3, 0, 2)


def test_a_type_in_warn_publishes_under_an_enforcing_deployment_and_others_stay_enforced(settings, tenant):
    _deployment_mode(settings, "enforce")
    _type_mode("message.received", SchemaMode.WARN)

    publish(tenant=tenant, type="message.received", data=BAD)
    with pytest.raises(SchemaViolation) as refused:
        publish(tenant=tenant, type="message.sent", data=BAD)

    assert refused.value.event_type == "message.sent"
    assert _totals() == (1, 0, 1)


def test_a_changed_schema_applies_at_once_after_it_is_saved(settings, tenant):
    _deployment_mode(settings, "enforce")
    publish(tenant=tenant, type="message.received", data=GOOD)
    event_type = EventType.objects.get(name="message.received")
    event_type.schema = {**event_type.schema, "required": [*event_type.schema["required"], "text_html"]}
    event_type.save()

    with pytest.raises(SchemaViolation) as refused:
        publish(tenant=tenant, type="message.received", data=GOOD)

    assert _pairs(refused.value) == [("data.text_html", "required")]


def test_a_custom_type_without_a_schema_is_never_refused(settings, tenant):
    _deployment_mode(settings, "enforce")
    EventType.objects.create(name="invoice.paid", description="An invoice was paid.")

    event = publish(tenant=tenant, type="invoice.paid", data={"anything": [1, "two", None], "chat_id": 3})

    assert Event.objects.get(pk=event.pk).event_type_id == "invoice.paid"
    assert _totals() == (1, 0, 0)


def test_a_custom_type_with_its_own_enforce_mode_and_no_schema_is_not_refused(settings, tenant):
    _deployment_mode(settings, "warn")
    EventType.objects.create(name="invoice.paid", schema_mode=SchemaMode.ENFORCE)

    publish(tenant=tenant, type="invoice.paid", data={"x": 1})

    assert _totals() == (1, 0, 0)


def test_publishing_fetches_nothing_a_stored_schema_refers_to(settings, tenant, receiver):
    _deployment_mode(settings, "enforce")
    receiver.default = Reply(headers={"Content-Type": "application/json"}, body=b'{"required": ["invoice_id"]}')
    EventType.objects.create(name="invoice.paid", schema={"$ref": receiver.url("/schema.json")})

    publish(tenant=tenant, type="invoice.paid", data={"amount": 5})

    assert receiver.requests == []  # no request to wherever a schema points, from any publishing process
    assert Event.objects.filter(event_type_id="invoice.paid").count() == 1


# --- batches ------------------------------------------------------------------------------------------------


def _items() -> list[dict]:
    return [
        {"type": "message.received", "data": GOOD},
        {"type": "message.received", "data": BAD},
        {"type": "chat.opened", "data": {"id": "chat_1", "status": "open"}},
    ]


def test_enforce_refuses_a_batch_with_a_bad_item_naming_it_and_writes_nothing(settings, tenant):
    _deployment_mode(settings, "enforce")
    endpoint_for(tenant)
    before = _written()

    with pytest.raises(BatchRefused) as refused:
        publish_many(tenant=tenant, events=_items())

    assert list(refused.value.errors) == [1]
    error = refused.value.errors[1]
    assert isinstance(error, SchemaViolation)
    assert _pairs(error) == [("data.chat_id", "required"), ("data.direction", "enum")]
    assert _written() == before


def test_enforce_with_partial_publishes_the_good_items_of_a_batch(settings, tenant):
    _deployment_mode(settings, "enforce")
    endpoint_for(tenant)

    results = publish_many(tenant=tenant, events=_items(), partial=True)

    assert [result.error is None for result in results] == [True, False, True]
    assert isinstance(results[1].error, SchemaViolation) and results[1].event is None
    published = [result.event.pk for result in results if result.event is not None]
    assert sorted(Event.objects.values_list("pk", flat=True)) == sorted(published)
    assert [Event.objects.get(pk=pk).event_type_id for pk in published] == ["message.received", "chat.opened"]
    assert Delivery.objects.count() == 2
    assert _totals() == (2, 2, 0)


def test_warn_publishes_the_whole_batch_and_counts_its_violations(settings, tenant):
    _deployment_mode(settings, "warn")
    endpoint_for(tenant)

    results = publish_many(tenant=tenant, events=[*_items(), {"type": "chat.closed", "data": {"status": ""}}])

    assert all(result.error is None and result.created for result in results)
    assert _totals() == (4, 4, 2)
