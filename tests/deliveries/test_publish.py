from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction
from django.utils import timezone as django_timezone

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.services.wakeups import to_claim
from events.catalog import CATALOG
from events.exceptions import InvalidPayload, PayloadTooLarge, UnknownEventType
from events.models import Event, EventType
from subscriptions.services import disable_endpoint
from tests.factories import TenantFactory, endpoint_for
from webhookhub import publish

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def _delivered_to(event) -> list[str]:
    return sorted(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True))


def _row_counts() -> tuple[int, int]:
    return Event.objects.count(), Delivery.objects.count()


def test_publish_creates_one_pending_delivery_per_matching_endpoint(tenant):
    by_type = endpoint_for(tenant, event_types=["message.received", "chat.opened"])
    by_star = endpoint_for(tenant, event_types=["*"])

    event = publish(tenant=tenant, type="message.received", data={"text": "hi"})

    assert _delivered_to(event) == sorted([by_type.pk, by_star.pk])
    deliveries = Delivery.objects.filter(event=event)
    assert {(d.status, d.attempt_count) for d in deliveries} == {(DeliveryStatus.PENDING, 0)}
    assert all(d.next_attempt_at is not None and d.lease_until is None for d in deliveries)  # due, unclaimed


def test_publish_leaves_out_disabled_endpoints(tenant):
    enabled = endpoint_for(tenant)
    endpoint_for(tenant, enabled=False)

    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == [enabled.pk]


def test_publish_leaves_out_endpoints_not_subscribed_to_the_type(tenant):
    wanted = endpoint_for(tenant, event_types=["message.received"])
    endpoint_for(tenant, event_types=["message.sent", "chat.opened"])

    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == [wanted.pk]


def test_publish_leaves_out_other_tenants_endpoints(tenant):
    own = endpoint_for(tenant)
    endpoint_for(TenantFactory())

    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == [own.pk]


def test_publish_leaves_out_endpoints_whose_filter_does_not_match(tenant):
    inbound = endpoint_for(tenant, filter={"direction": "inbound"})
    either = endpoint_for(tenant, filter={"direction": ["inbound", "outbound"], "contact.id": "ct_1"})
    endpoint_for(tenant, filter={"direction": "outbound"})
    endpoint_for(tenant, filter={"contact.id": "ct_2"})
    endpoint_for(tenant, filter={"missing.path": "x"})

    event = publish(tenant=tenant, type="message.received", data={"direction": "inbound", "contact": {"id": "ct_1"}})

    assert _delivered_to(event) == sorted([inbound.pk, either.pk])


def test_star_subscribes_to_every_catalog_type(tenant):
    endpoint = endpoint_for(tenant, event_types=["*"])

    for spec in CATALOG:
        event = publish(tenant=tenant, type=spec.name, data=spec.example)
        assert _delivered_to(event) == [endpoint.pk], spec.name


def test_publish_can_be_called_with_the_tenant_slug(tenant):
    endpoint = endpoint_for(tenant)

    event = publish(tenant=tenant.slug, type="message.received", data={})

    assert event.tenant_id == tenant.pk
    assert _delivered_to(event) == [endpoint.pk]


def test_same_idempotency_key_returns_the_first_event_and_writes_nothing_more(tenant):
    endpoint_for(tenant)
    first = publish(tenant=tenant, type="message.received", data={"n": 1}, idempotency_key="order-1")

    again = publish(tenant=tenant, type="message.received", data={"n": 2}, idempotency_key="order-1")

    assert again.pk == first.pk
    assert again.data == {"n": 1}
    assert _row_counts() == (1, 1)


def test_same_idempotency_key_in_another_tenant_is_a_separate_event(tenant):
    other = TenantFactory()
    endpoint_for(tenant)
    endpoint_for(other)

    first = publish(tenant=tenant, type="message.received", data={}, idempotency_key="order-1")
    second = publish(tenant=other, type="message.received", data={}, idempotency_key="order-1")

    assert second.pk != first.pk
    assert second.tenant_id == other.pk
    assert _row_counts() == (2, 2)


@pytest.mark.parametrize(
    ("type", "data", "error"),
    [
        ("no.such_type", {}, UnknownEventType),
        ("message.received", {"tags": {"vip"}}, InvalidPayload),
        ("message.received", {"at": datetime(2026, 1, 1, tzinfo=UTC)}, InvalidPayload),
        ("message.received", {"score": float("nan")}, InvalidPayload),
        ("message.received", {"score": float("inf")}, InvalidPayload),
        ("message.received", [{"text": "hi"}], InvalidPayload),
        ("message.received", "hi", InvalidPayload),
        ("message.received", None, InvalidPayload),
    ],
)
def test_bad_input_raises_and_writes_nothing(tenant, django_capture_on_commit_callbacks, type, data, error):
    endpoint_for(tenant)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(error):
        publish(tenant=tenant, type=type, data=data)

    assert _row_counts() == (0, 0)
    assert callbacks == []


def test_archived_event_type_is_refused(tenant):
    endpoint_for(tenant)
    EventType.objects.filter(name="chat.pending").update(archived=True)

    with pytest.raises(UnknownEventType):
        publish(tenant=tenant, type="chat.pending", data={})

    assert _row_counts() == (0, 0)


def test_unknown_tenant_is_refused(tenant):
    with pytest.raises(ValueError, match="Unknown tenant"):
        publish(tenant="no-such-tenant", type="message.received", data={})

    assert _row_counts() == (0, 0)


def test_payload_over_the_limit_is_refused(tenant, settings):
    endpoint_for(tenant)
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 300}

    with pytest.raises(PayloadTooLarge, match="limit is 300 bytes"):
        publish(tenant=tenant, type="message.received", data={"text": "x" * 300})

    assert _row_counts() == (0, 0)


def test_payload_limit_is_inclusive_and_counts_utf8_bytes(tenant, settings):
    data = {"text": "é" * 50}
    size = len(publish(tenant=tenant, type="message.received", data=data, occurred_at=AT).body.encode())

    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": size}
    publish(tenant=tenant, type="message.received", data=data, occurred_at=AT)
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": size - 1}
    with pytest.raises(PayloadTooLarge):
        publish(tenant=tenant, type="message.received", data=data, occurred_at=AT)

    assert Event.objects.count() == 2
    assert size - len(Event.objects.first().body) == 50  # each "é" is two bytes


def test_event_body_is_exactly_the_json_envelope(tenant):
    event = publish(tenant=tenant, type="message.received", data={"text": "Olá", "n": 1}, occurred_at=AT)

    expected = (
        f'{{"id":"{event.pk}","type":"message.received","timestamp":"2026-11-22T10:00:00.123456Z",'
        f'"tenant_id":"{tenant.pk}","data":{{"text":"Olá","n":1}}}}'
    )
    event.refresh_from_db()
    assert event.body == expected


def test_envelope_timestamp_is_utc(tenant):
    at = datetime(2026, 11, 22, 12, 30, tzinfo=timezone(timedelta(hours=2)))

    event = publish(tenant=tenant, type="message.received", data={}, occurred_at=at)

    assert '"timestamp":"2026-11-22T10:30:00Z"' in event.body


def test_hand_off_to_the_broker_waits_for_commit(tenant, django_capture_on_commit_callbacks, broker):
    endpoint_for(tenant)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = publish(tenant=tenant, type="message.received", data={})

    assert len(callbacks) == 1
    assert broker.messages() == []  # nothing enqueued before commit
    callbacks[0]()
    delivery = Delivery.objects.get(event=event)
    assert broker.messages() == [("deliveries.drain", [])]
    assert (delivery.status, delivery.lease_until) == ("pending", None)  # a drain claims it from the database


def test_a_publish_wakes_the_workers_when_it_commits_naming_its_endpoints(tenant, wake_ups):
    endpoint = endpoint_for(tenant)
    other = endpoint_for(tenant)

    with transaction.atomic():
        publish(tenant=tenant, type="message.received", data={})
        assert wake_ups.heard(wait=0.2) == []  # nothing before the commit

    assert wake_ups.heard() == [",".join(f"{pk}=" for pk in sorted([endpoint.pk, other.pk]))]  # nobody owns them


def test_the_wake_up_names_each_endpoints_live_owner_so_only_it_claims(tenant, wake_ups):
    owned, lapsed, new = endpoint_for(tenant), endpoint_for(tenant), endpoint_for(tenant)
    now = django_timezone.now()
    EndpointSchedule.objects.create(endpoint=owned, owner="host:1:aa", owned_until=now + timedelta(seconds=30))
    EndpointSchedule.objects.create(endpoint=lapsed, owner="host:2:bb", owned_until=now - timedelta(seconds=1))

    publish(tenant=tenant, type="message.received", data={})

    [heard] = wake_ups.heard()
    assert dict(item.split("=") for item in heard.split(",")) == {owned.pk: "host:1:aa", lapsed.pk: "", new.pk: ""}
    assert to_claim([heard], owner="host:1:aa") == sorted([owned.pk, lapsed.pk, new.pk])
    assert to_claim([heard], owner="host:3:cc") == sorted([lapsed.pk, new.pk])  # not another live owner's


def test_a_publish_that_writes_no_delivery_wakes_nobody(tenant, wake_ups):
    endpoint = endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data={}, idempotency_key="once")
    assert wake_ups.heard() == [f"{endpoint.pk}="]

    publish(tenant=tenant, type="message.received", data={}, idempotency_key="once")  # the first event is returned
    publish(tenant=tenant, type="message.received", data={}, endpoint_ids=[])

    assert wake_ups.heard() == []


def test_publish_without_matching_endpoints_enqueues_nothing(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        event = publish(tenant=tenant, type="message.received", data={})

    assert Event.objects.filter(pk=event.pk).exists()
    assert callbacks == []


def test_publish_in_a_rolled_back_transaction_leaves_nothing(tenant, django_capture_on_commit_callbacks):
    endpoint_for(tenant)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            publish(tenant=tenant, type="message.received", data={})
            assert _row_counts() == (1, 1)
            raise RuntimeError("the caller's transaction fails")

    assert _row_counts() == (0, 0)
    assert callbacks == []


def test_an_endpoint_added_after_a_publish_gets_the_next_event(tenant):
    first = endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data={})  # the process now knows the tenant's routes

    second = endpoint_for(tenant)
    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == sorted([first.pk, second.pk])


def test_an_endpoint_disabled_after_a_publish_is_left_out_of_the_next_event(tenant):
    kept, disabled = endpoint_for(tenant), endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data={})

    disable_endpoint(endpoint=disabled, reason="by an admin", notify=False)
    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == [kept.pk]


def test_an_endpoint_deleted_after_a_publish_is_left_out_of_the_next_event(tenant):
    kept, deleted = endpoint_for(tenant), endpoint_for(tenant)
    publish(tenant=tenant, type="message.received", data={})

    deleted.delete()
    event = publish(tenant=tenant, type="message.received", data={})

    assert _delivered_to(event) == [kept.pk]


def test_a_type_archived_after_a_publish_is_refused_at_once(tenant):
    endpoint_for(tenant)
    publish(tenant=tenant, type="chat.opened", data={})
    EventType.objects.filter(name="chat.opened").update(archived=True)
    before = _row_counts()

    with pytest.raises(UnknownEventType):
        publish(tenant=tenant, type="chat.opened", data={})

    assert _row_counts() == before


def test_data_nested_too_deeply_is_refused_and_writes_nothing(tenant):
    endpoint_for(tenant)
    data: dict = {}
    inner = data
    for _ in range(5000):
        inner["x"] = {}
        inner = inner["x"]
    before = _row_counts()

    with pytest.raises(InvalidPayload, match="nested too deeply"):
        publish(tenant=tenant, type="message.received", data=data)

    assert _row_counts() == before
