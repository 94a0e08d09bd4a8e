"""/api/v1/events/: publishing (202, idempotency, refusals that write nothing) and reading events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from events.models import Event, EventSource, EventType
from tests.factories import URL, endpoint_for
from tests.support.db import db_state
from tests.web.api.support import API, ids, key_client
from webhookhub import publish

pytestmark = pytest.mark.django_db

EVENTS = API + "/events/"


def _publish(client, body, **headers):
    return client.post(EVENTS, body, format="json", **headers)


def test_publish_returns_202_with_the_event_id_and_delivery_count(admin, tenant, other_tenant):
    by_type = endpoint_for(tenant, event_types=["message.received"])
    by_star = endpoint_for(tenant, event_types=["*"])
    endpoint_for(tenant, event_types=["chat.opened"])
    endpoint_for(tenant, enabled=False)
    endpoint_for(other_tenant)

    response = _publish(admin, {"type": "message.received", "data": {"text": "hi", "n": 1}})

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "deliveries"} and body["deliveries"] == 2
    event = Event.objects.get(pk=body["id"])
    assert (event.tenant, event.event_type_id, event.data, event.source) == (
        tenant,
        "message.received",
        {"text": "hi", "n": 1},
        EventSource.API,
    )
    deliveries = Delivery.objects.filter(event=event)
    assert sorted(deliveries.values_list("endpoint_id", flat=True)) == sorted([by_type.pk, by_star.pk])
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}
    assert all(d.next_attempt_at is not None for d in deliveries)


def test_publish_with_no_matching_endpoint_records_the_event_with_no_deliveries(admin, tenant):
    response = _publish(admin, {"type": "chat.closed", "data": {}})

    assert response.status_code == 202
    assert response.json()["deliveries"] == 0
    assert Event.objects.filter(pk=response.json()["id"], tenant=tenant).exists()
    assert Delivery.objects.count() == 0


def test_the_same_idempotency_key_gives_the_same_answer_and_writes_nothing_more(admin, tenant):
    endpoint_for(tenant)
    body = {"type": "message.received", "data": {"text": "hi"}}
    first = _publish(admin, body, HTTP_IDEMPOTENCY_KEY="order-42-paid")
    after_first = db_state()

    again = _publish(admin, body, HTTP_IDEMPOTENCY_KEY="order-42-paid")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() == {"id": first.json()["id"], "deliveries": 1}
    assert db_state() == after_first
    assert Event.objects.get(pk=first.json()["id"]).idempotency_key == "order-42-paid"


def test_idempotency_keys_are_per_tenant(admin, tenant, other_tenant):
    body = {"type": "message.received", "data": {}}
    ours = _publish(admin, body, HTTP_IDEMPOTENCY_KEY="k1")

    theirs = _publish(key_client(other_tenant), body, HTTP_IDEMPOTENCY_KEY="k1")

    assert theirs.status_code == 202 and theirs.json()["id"] != ours.json()["id"]
    assert Event.objects.get(pk=theirs.json()["id"]).tenant == other_tenant


def test_without_idempotency_key_each_publish_is_a_new_event(admin):
    body = {"type": "message.received", "data": {}}

    first, second = _publish(admin, body), _publish(admin, body)

    assert first.json()["id"] != second.json()["id"]
    assert Event.objects.count() == 2


REFUSED = [
    ("unknown type", {"type": "no.such_type", "data": {}}, "type"),
    ("bad type name", {"type": "", "data": {}}, "type"),
    ("type missing", {"data": {}}, "type"),
    ("data a list", {"type": "message.received", "data": [1, 2]}, "data"),
    ("data a string", {"type": "message.received", "data": "hi"}, "data"),
    ("data null", {"type": "message.received", "data": None}, "data"),
    ("data missing", {"type": "message.received"}, "data"),
]


@pytest.mark.parametrize(("body", "field"), [pytest.param(b, f, id=i) for i, b, f in REFUSED])
def test_bad_publish_is_400_naming_the_field_and_writes_nothing(admin, tenant, body, field):
    endpoint_for(tenant)
    before = db_state()

    response = _publish(admin, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert db_state() == before


def test_archived_type_is_refused(admin, tenant):
    EventType.objects.filter(name="chat.pending").update(archived=True)
    endpoint_for(tenant)
    before = db_state()

    response = _publish(admin, {"type": "chat.pending", "data": {}})

    assert response.status_code == 400
    assert "type" in response.json()["errors"]
    assert db_state() == before


def test_invalid_json_is_400_and_writes_nothing(admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = admin.post(EVENTS, data=b'{"type": "message.received", "data": {', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "errors"} and "JSON parse error" in body["detail"]
    assert db_state() == before


def test_payload_over_the_cap_is_413_and_writes_nothing(admin, tenant, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 300}
    endpoint_for(tenant)
    before = db_state()

    response = _publish(admin, {"type": "message.received", "data": {"text": "x" * 400}})

    assert response.status_code == 413, response.content
    body = response.json()
    assert body["errors"] == {} and "limit is 300 bytes" in body["detail"]
    assert db_state() == before


def test_payload_under_the_cap_is_accepted(admin, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 1000}

    response = _publish(admin, {"type": "message.received", "data": {"text": "x" * 400}})

    assert response.status_code == 202


def test_overlong_idempotency_key_is_400_and_writes_nothing(admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = _publish(admin, {"type": "message.received", "data": {}}, HTTP_IDEMPOTENCY_KEY="k" * 201)

    assert response.status_code == 400
    assert db_state() == before


def test_data_with_a_lone_surrogate_is_400_and_writes_nothing(admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = admin.post(
        EVENTS, data=b'{"type": "message.received", "data": {"text": "\\ud800"}}', content_type="application/json"
    )

    assert response.status_code == 400
    assert "data" in response.json()["errors"]
    assert db_state() == before


def test_data_with_nul_is_400_and_writes_nothing(admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = _publish(admin, {"type": "message.received", "data": {"text": "a\x00b"}})

    assert response.status_code == 400
    assert "data" in response.json()["errors"]
    assert db_state() == before


# --- reading -----------------------------------------------------------------------------------------


def _event(tenant, type: str, *, age: timedelta = timedelta(0), **kwargs):
    event = publish(tenant=tenant, type=type, data={}, **kwargs)
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - age)
    return event


def test_list_is_newest_first_and_filters_by_type(admin, tenant):
    old = _event(tenant, "message.received", age=timedelta(hours=2))
    new = _event(tenant, "chat.opened", age=timedelta(hours=1))

    everything = admin.get(EVENTS)
    received = admin.get(EVENTS, {"type": "message.received"})
    opened = admin.get(EVENTS, {"type": "chat.opened"})

    assert set(everything.json()) == {"next", "previous", "results"}
    assert ids(everything) == [new.pk, old.pk]
    assert ids(received) == [old.pk]
    assert ids(opened) == [new.pk]
    assert ids(admin.get(EVENTS, {"type": "chat.closed"})) == []


def test_list_filters_by_since_and_until(admin, tenant):
    now = timezone.now()
    three_days = _event(tenant, "message.received", age=timedelta(days=3))
    two_hours = _event(tenant, "message.received", age=timedelta(hours=2))
    just_now = _event(tenant, "message.received")

    since = admin.get(EVENTS, {"since": (now - timedelta(days=1)).isoformat()})
    until = admin.get(EVENTS, {"until": (now - timedelta(days=1)).isoformat()})
    between = admin.get(
        EVENTS, {"since": (now - timedelta(hours=3)).isoformat(), "until": (now - timedelta(hours=1)).isoformat()}
    )

    assert ids(since) == [just_now.pk, two_hours.pk]
    assert ids(until) == [three_days.pk]
    assert ids(between) == [two_hours.pk]


def test_list_filters_by_source(admin, tenant):
    from_app = _event(tenant, "message.received")
    from_api = _publish(admin, {"type": "message.received", "data": {}}).json()["id"]

    assert ids(admin.get(EVENTS, {"source": "api"})) == [from_api]
    assert ids(admin.get(EVENTS, {"source": "app"})) == [from_app.pk]


def test_list_with_a_bad_since_is_400(admin):
    response = admin.get(EVENTS, {"since": "yesterday"})

    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_read_includes_the_events_deliveries(admin, tenant):
    first, second = endpoint_for(tenant), endpoint_for(tenant)
    event_id = _publish(admin, {"type": "message.received", "data": {"text": "hi"}}).json()["id"]

    response = admin.get(f"{EVENTS}{event_id}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["type"], body["data"], body["source"]) == (
        event_id,
        "message.received",
        {"text": "hi"},
        "api",
    )
    assert sorted(d["endpoint"] for d in body["deliveries"]) == sorted([first.pk, second.pk])
    assert {(d["event"], d["status"], d["event_type"]) for d in body["deliveries"]} == {
        (event_id, "pending", "message.received")
    }
    assert "body" not in body


def test_publishing_follows_endpoint_changes_made_through_the_api(admin):
    message = {"type": "message.received", "data": {}}
    assert _publish(admin, message).json()["deliveries"] == 0

    created = admin.post(API + "/endpoints/", {"url": URL, "event_types": ["message.received"]}, format="json")
    endpoint = f"{API}/endpoints/{created.json()['id']}/"
    assert _publish(admin, message).json()["deliveries"] == 1

    admin.patch(endpoint, {"event_types": ["chat.opened"]}, format="json")
    assert _publish(admin, message).json()["deliveries"] == 0
    assert _publish(admin, {"type": "chat.opened", "data": {}}).json()["deliveries"] == 1

    admin.post(endpoint + "disable/")
    assert _publish(admin, {"type": "chat.opened", "data": {}}).json()["deliveries"] == 0

    admin.post(endpoint + "enable/", {"force": True}, format="json")  # no test event: nothing listens at URL
    assert _publish(admin, {"type": "chat.opened", "data": {}}).json()["deliveries"] == 1

    admin.delete(endpoint)
    assert _publish(admin, {"type": "chat.opened", "data": {}}).json()["deliveries"] == 0
