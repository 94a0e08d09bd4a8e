"""Inbound triggers end to end: an external system's POST becomes a delivery a real worker sends.

Everything crosses real sockets: the trigger is created through the REST API on the live
server, the external system's JSON is POSTed to the URL and key that answer returned, and a
real Celery worker delivers the event to a real receiver.
"""

import json
import urllib.error
import urllib.request

import pytest
from standardwebhooks import Webhook

from accounts.services import create_api_key
from deliveries.models import Delivery, DeliveryStatus
from events.models import Event, EventSource
from tests.factories import make_endpoint
from tests.support.waiting import delivery_settled, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

EVENT_TYPE = "contact.created"
SAMPLE = {
    "contact": {"phone": "+15555550123", "name": "Ada Lovelace", "address": {"city": "London"}},
    "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}],
    "source": "crm",
}
IDENTIFIER = "contact.phone"
# An identifier, a nested path into a nested field, and an array path.
MAPPING = {"contact.phone": "phone", "contact.address.city": "contact.city", "items[0].sku": "first_sku"}


def http(method: str, url: str, *, token: str, payload=None, raw: bytes | None = None) -> tuple[int, dict, dict]:
    """One real HTTP request; returns (status, JSON body, lower-cased headers), errors included."""
    body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    request = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {token}"})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, content, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, content, headers = error.code, error.read(), error.headers
    return status, json.loads(content), {k.lower(): v for k, v in headers.items()}


def create_trigger_over_api(live_server, api_key: str) -> dict:
    trigger = {
        "name": "CRM contacts",
        "event_type": EVENT_TYPE,
        "sample": SAMPLE,
        "identifier": IDENTIFIER,
        "mapping": MAPPING,
    }
    status, created, _ = http("POST", f"{live_server.url}/api/v1/triggers/", token=api_key, payload=trigger)
    assert status == 201, created
    return created


def request_log(live_server, api_key: str, trigger_id: str) -> list[dict]:
    status, page, _ = http("GET", f"{live_server.url}/api/v1/triggers/{trigger_id}/requests/", token=api_key)
    assert status == 200, page
    return page["results"]


def test_a_post_to_a_trigger_is_delivered_signed_to_the_endpoint(e2e, live_server, tenant, receiver):
    api_key = create_api_key(tenant=tenant).key
    endpoint = make_endpoint(tenant, receiver.url("/crm"), event_types=[EVENT_TYPE])

    created = create_trigger_over_api(live_server, api_key)
    trigger_id = created["id"]
    assert created["url"] == f"{live_server.url}/triggers/{trigger_id}"
    assert created["api_key"].startswith("whtrg_")
    assert created["key_prefix"] == created["api_key"][: len(created["key_prefix"])]
    assert (created["name"], created["event_type"], created["enabled"]) == ("CRM contacts", EVENT_TYPE, True)
    assert (created["sample"], created["identifier"], created["mapping"]) == (SAMPLE, IDENTIFIER, MAPPING)
    assert {"contact.phone", "contact.address.city", "items[0].sku", "items[1].qty"} <= set(created["available_paths"])
    status, shown, _ = http("GET", f"{live_server.url}/api/v1/triggers/{trigger_id}/", token=api_key)
    assert status == 200 and "api_key" not in shown  # the key is shown once

    e2e.start_all()

    sent = {
        "contact": {"phone": "+15555550188", "name": "Grace Hopper", "address": {"city": "Arlington"}},
        "items": [{"sku": "SKU-9", "qty": 3}, {"sku": "SKU-7", "qty": 1}],
        "source": "crm",
    }
    status, answer, headers = http("POST", created["url"], token=created["api_key"], payload=sent)
    assert status == 200, answer
    assert answer == {"message": "Request captured successfully"}
    assert headers["content-type"] == "application/json"

    [request] = receiver.wait_for(1)
    assert request.path == "/crm"
    envelope = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert envelope["id"] == request.headers["webhook-id"]
    assert envelope["type"] == EVENT_TYPE
    assert envelope["tenant_id"] == tenant.pk
    assert envelope["data"] == {
        "phone": "+15555550188",
        "contact": {"city": "Arlington"},
        "first_sku": "SKU-9",
        "unmapped": {
            "contact.name": "Grace Hopper",
            "items[0].qty": 3,
            "items[1].sku": "SKU-7",
            "items[1].qty": 1,
            "source": "crm",
        },
    }
    assert Event.objects.get(pk=envelope["id"]).source == EventSource.TRIGGER

    [logged] = request_log(live_server, api_key, trigger_id)
    assert (logged["status_code"], logged["outcome"], logged["detail"]) == (200, "captured", "")
    assert logged["event"] == envelope["id"]
    assert logged["source_ip"] == "127.0.0.1"
    assert json.loads(logged["body_excerpt"]) == sent


def test_a_request_without_the_identifier_is_refused_and_sends_nothing(e2e, live_server, tenant, receiver):
    api_key = create_api_key(tenant=tenant).key
    endpoint = make_endpoint(tenant, receiver.url("/crm"), event_types=[EVENT_TYPE])
    created = create_trigger_over_api(live_server, api_key)
    url, key = created["url"], created["api_key"]
    e2e.start_all()

    missing = {"contact": {"name": "No Phone", "address": {"city": "Paris"}}, "items": [{"sku": "SKU-3", "qty": 1}]}
    empty = {"contact": {"phone": "", "name": "Empty Phone"}}
    for body in (missing, empty):
        status, answer, _ = http("POST", url, token=key, payload=body)
        assert status == 400, answer
        assert IDENTIFIER in answer["detail"]
        assert answer["errors"] == {IDENTIFIER: ["This field is required."]}

    # A good request after the refused ones. A refused request answers only after all it would write is
    # committed, and a worker sends only deliveries it finds in the database: with the good request's
    # event and delivery the only rows, and that delivery settled, nothing else can ever be sent.
    status, answer, _ = http("POST", url, token=key, payload={"contact": {"phone": "+15555550111"}})
    assert (status, answer) == (200, {"message": "Request captured successfully"})
    [control] = receiver.wait_for(1)
    envelope = Webhook(endpoint.secret).verify(control.body, control.headers)
    assert envelope["data"] == {"phone": "+15555550111"}
    assert list(Event.objects.values_list("id", flat=True)) == [envelope["id"]]
    assert list(Delivery.objects.values_list("event_id", flat=True)) == [envelope["id"]]
    assert wait_until(delivery_settled(envelope["id"])).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1

    log = request_log(live_server, api_key, created["id"])
    assert [(entry["status_code"], entry["outcome"], entry["event"]) for entry in log] == [
        (200, "captured", envelope["id"]),
        (400, "rejected", None),
        (400, "rejected", None),
    ]
    assert all(IDENTIFIER in entry["detail"] and entry["source_ip"] == "127.0.0.1" for entry in log[1:])
