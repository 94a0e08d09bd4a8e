"""POST /api/v1/events/batch/: up to 100 events in one transaction, all or nothing unless asked otherwise."""

import pytest
from django.core.cache import cache

from deliveries.models import Delivery
from events.models import Event, EventSource
from tests.factories import endpoint_for
from tests.support.db import db_state
from tests.web.api.support import API, key_client
from webhookhub.web.api.throttling import PublishRateThrottle

pytestmark = pytest.mark.django_db

BATCH = API + "/events/batch/"


def _post(client, body):
    return client.post(BATCH, body, format="json")


def _event(n, **extra) -> dict:
    return {"type": "message.received", "data": {"n": n}, **extra}


def test_a_batch_answers_202_with_each_events_id_and_deliveries_in_order(admin, tenant):
    endpoint_for(tenant, event_types=["message.received"])
    endpoint_for(tenant, event_types=["*"])

    response = _post(admin, {"events": [_event(1), _event(2), {"type": "chat.closed", "data": {}}]})

    assert response.status_code == 202, response.content
    results = response.json()["results"]
    assert [r["deliveries"] for r in results] == [2, 2, 1]
    events = {e.pk: e for e in Event.objects.filter(pk__in=[r["id"] for r in results])}
    assert [events[r["id"]].data for r in results] == [{"n": 1}, {"n": 2}, {}]
    assert {e.source for e in events.values()} == {EventSource.API}
    assert {e.tenant_id for e in events.values()} == {tenant.pk}


def test_a_bad_event_refuses_the_batch_with_its_errors_at_its_index(admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = _post(admin, {"events": [_event(1), {"type": "no.such_type", "data": {}}, _event(3)]})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["events.1.type"]  # the project's flat error keys: field path, dotted
    assert "Unknown event type 'no.such_type'" in errors["events.1.type"][0]
    assert db_state() == before


def test_a_malformed_event_refuses_the_batch_naming_it(admin, tenant):
    before = db_state()

    response = _post(admin, {"events": [_event(1), {"type": "message.received", "data": "text"}]})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["events.1.data"]
    assert db_state() == before


def test_without_all_or_nothing_the_good_events_go_and_the_bad_say_why(admin, tenant):
    endpoint_for(tenant)

    response = _post(admin, {"events": [_event(1), {"type": "no.such_type", "data": {}}], "all_or_nothing": False})

    assert response.status_code == 202
    first, second = response.json()["results"]
    assert first["deliveries"] == 1 and Event.objects.filter(pk=first["id"]).exists()
    assert set(second) == {"error"} and "Unknown event type" in second["error"]["type"][0]
    assert Event.objects.filter(tenant=tenant).count() == 1


def test_each_events_idempotency_key_gives_the_first_event_again(admin, tenant):
    endpoint_for(tenant)
    first = _post(admin, {"events": [_event(1, idempotency_key="a")]}).json()["results"][0]

    again = _post(admin, {"events": [_event(9, idempotency_key="a"), _event(2, idempotency_key="b")]})

    assert again.status_code == 202
    repeated, new = again.json()["results"]
    assert repeated == first  # the same id and its deliveries, nothing written
    assert Event.objects.filter(tenant=tenant).count() == 2
    assert Delivery.objects.filter(event__tenant=tenant).count() == 2
    assert new["id"] != first["id"]


@pytest.mark.parametrize("count", [0, 101])
def test_a_batch_holds_one_to_a_hundred_events(admin, tenant, count):
    before = db_state()

    response = _post(admin, {"events": [_event(n) for n in range(count)]})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["events"]
    assert db_state() == before


@pytest.mark.parametrize(
    "body",
    [[None, None], "events", {"events": "x"}, {"events": None}, {}],
    ids=["list", "text", "events-text", "events-null", "empty"],
)
def test_a_body_that_is_not_a_batch_is_a_400_naming_what_is_wrong(tenant, body):
    """Through the key-authenticated path, where the publish rate reads the body first (the fuzzer's 500)."""
    client = key_client(tenant)
    before = db_state()

    response = _post(client, body)

    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    assert db_state() == before


def test_the_publish_rate_counts_a_batchs_events_not_its_request(tenant, monkeypatch):
    monkeypatch.setattr(PublishRateThrottle, "THROTTLE_RATES", {"publish": "5/min"})
    cache.clear()
    client = key_client(tenant)

    first = _post(client, {"events": [_event(n) for n in range(4)]})
    over = _post(client, {"events": [_event(n) for n in range(2)]})  # 6 events in the minute
    fits = _post(client, {"events": [_event(9)]})  # 5

    assert (first.status_code, over.status_code, fits.status_code) == (202, 429, 202)
    assert Event.objects.filter(tenant=tenant).count() == 5
