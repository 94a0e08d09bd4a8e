"""The REST API end to end: configure, publish and inspect over HTTP while a real worker delivers."""

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from accounts.services import create_api_key
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_endpoint_publish_and_delivery_log_over_the_api(e2e, tenant, receiver):
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {create_api_key(tenant=tenant).key}")
    e2e.start_all()

    endpoint = {
        "url": receiver.url(),
        "event_types": ["contact.created"],
        "auth": {"type": "bearer", "token": "rt-token-1234"},
    }
    created = api.post("/api/v1/endpoints/", endpoint, format="json")
    assert created.status_code == 201, created.content
    endpoint_id, secret = created.json()["id"], created.json()["secret"]

    published = api.post("/api/v1/events/", {"type": "contact.created", "data": {"id": "ct_1"}}, format="json")
    assert published.status_code == 202, published.content
    event_id = published.json()["id"]
    assert published.json()["deliveries"] == 1

    [request] = receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["id"] == event_id
    assert request.headers["authorization"] == "Bearer rt-token-1234"

    def delivered():
        page = api.get("/api/v1/deliveries/", {"event": event_id, "endpoint": endpoint_id}).json()["results"]
        return page if page and page[0]["status"] == "succeeded" else None

    [delivery] = wait_until(delivered, timeout=30)
    detail = api.get(f"/api/v1/deliveries/{delivery['id']}/").json()
    [attempt] = detail["attempts"]
    assert (attempt["number"], attempt["status_code"], attempt["outcome"]) == (1, 200, "success")
    assert attempt["request_headers"]["webhook-id"] == event_id
    assert b"rt-token-1234" not in api.get(f"/api/v1/deliveries/{delivery['id']}/").content
