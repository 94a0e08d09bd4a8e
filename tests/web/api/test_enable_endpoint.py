"""``POST /api/v1/endpoints/{id}/enable/`` tests a disabled endpoint first; ``PATCH {"enabled": true}`` no longer
enables one. Real receivers on 127.0.0.1."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import disable_endpoint
from tests.factories import failing_for, make_endpoint
from tests.support.db import db_state
from tests.support.receiver import Reply
from tests.web.api.support import API, key_client, session_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_receivers")]

REASON = "No successful delivery for 5 days."


def _disabled(tenant, receiver) -> Endpoint:
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    failing_for(endpoint, timedelta(days=6))
    disable_endpoint(endpoint=endpoint, reason=REASON, notify=False)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=2, concurrency_limited_by="429")
    return endpoint


def _enable(endpoint: Endpoint) -> str:
    return f"{API}/endpoints/{endpoint.pk}/enable/"


def _detail(endpoint: Endpoint) -> str:
    return f"{API}/endpoints/{endpoint.pk}/"


def test_a_working_endpoint_is_enabled_and_returned(admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    response = admin.post(_enable(endpoint))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["enabled"], body["disabled_reason"], body["disabled_at"]) == (endpoint.pk, True, "", None)
    assert len(receiver.requests) == 1
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since is None
    assert EndpointSchedule.objects.get(endpoint=endpoint).concurrency_limit is None


def test_a_failing_endpoint_answers_409_with_the_tests_status_and_stays_disabled(admin, tenant, receiver):
    receiver.default = Reply(status=503)
    endpoint = _disabled(tenant, receiver)

    response = admin.post(_enable(endpoint), {}, format="json")

    assert response.status_code == 409
    body = response.json()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert body["test"] == {"status_code": 503, "error": "HTTP 503", "delivery_id": delivery.pk}
    assert body["detail"].startswith("Not enabled: the test event failed (HTTP 503).")
    assert '{"force": true}' in body["detail"]
    assert delivery.status == DeliveryStatus.FAILED
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, REASON)
    assert EndpointSchedule.objects.get(endpoint=endpoint).concurrency_limit == 2
    assert admin.get(f"{API}/deliveries/{delivery.pk}/").json()["attempts"][0]["status_code"] == 503


def test_a_refused_connection_answers_409_with_the_error(admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    receiver.stop()

    response = admin.post(_enable(endpoint))

    assert response.status_code == 409
    test = response.json()["test"]
    assert test["status_code"] is None
    assert test["error"].startswith("Connection refused by 127.0.0.1 port")
    assert Endpoint.objects.get(pk=endpoint.pk).enabled is False


def test_force_enables_without_a_test(admin, tenant, receiver):
    receiver.default = Reply(status=500)
    endpoint = _disabled(tenant, receiver)

    response = admin.post(_enable(endpoint), {"force": True}, format="json")

    assert (response.status_code, response.json()["enabled"]) == (200, True)
    assert receiver.requests == []
    assert not Delivery.objects.exists()


def test_an_enabled_endpoint_is_answered_as_it_is(admin, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint

    response = admin.post(_enable(endpoint))

    assert (response.status_code, response.json()["enabled"]) == (200, True)
    assert receiver.requests == []


def test_a_force_that_is_not_a_boolean_is_refused_naming_it(admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    before = db_state()

    response = admin.post(_enable(endpoint), {"force": "maybe"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["force"]
    assert db_state() == before
    assert receiver.requests == []


def test_an_unknown_field_is_refused_naming_it_and_nothing_is_sent(admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    before = db_state()

    response = admin.post(_enable(endpoint), {"forse": True}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["forse"]
    assert db_state() == before
    assert receiver.requests == []


# --- who may: tenant admins only; refused callers change nothing and send nothing -----------------------


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (lambda tenant, other: key_client(tenant, Role.MANAGER), 403),
        (lambda tenant, other: key_client(tenant, Role.USER), 403),
        (lambda tenant, other: session_client(tenant, Role.MANAGER), 403),
        (lambda tenant, other: key_client(other), 404),
        (lambda tenant, other: APIClient(), 401),
    ],
    ids=["manager key", "user key", "manager session", "other tenant's admin", "anonymous"],
)
@pytest.mark.parametrize("force", [False, True])
def test_others_cannot_enable_and_no_test_is_sent(tenant, other_tenant, receiver, caller, status, force):
    endpoint = _disabled(tenant, receiver)
    client = caller(tenant, other_tenant)
    before = db_state()

    response = client.post(_enable(endpoint), {"force": force}, format="json")

    assert response.status_code == status
    assert receiver.requests == []
    assert db_state() == before
    assert Endpoint.objects.get(pk=endpoint.pk).enabled is False


def test_a_session_admin_may_enable(tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    response = session_client(tenant, Role.ADMIN).post(_enable(endpoint))

    assert (response.status_code, response.json()["enabled"]) == (200, True)


# --- PATCH {"enabled": true} does not enable a disabled endpoint ----------------------------------------


def test_patch_enabled_true_on_a_disabled_endpoint_is_refused_naming_enabled(admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    before = db_state()

    response = admin.patch(_detail(endpoint), {"enabled": True, "name": "renamed"}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["enabled"]
    assert f"POST /api/v1/endpoints/{endpoint.pk}/enable/" in errors["enabled"][0]
    assert '{"force": true}' in errors["enabled"][0]
    assert db_state() == before  # not even the name
    assert receiver.requests == []


def test_patch_enabled_true_on_an_enabled_endpoint_changes_the_rest(admin, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint

    response = admin.patch(_detail(endpoint), {"enabled": True, "name": "renamed"}, format="json")

    assert (response.status_code, response.json()["name"], response.json()["enabled"]) == (200, "renamed", True)


def test_patch_enabled_false_still_disables(admin, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint

    response = admin.patch(_detail(endpoint), {"enabled": False}, format="json")

    assert (response.status_code, response.json()["enabled"]) == (200, False)
    assert Endpoint.objects.get(pk=endpoint.pk).disabled_reason == "Disabled by an admin."


def test_creating_an_enabled_endpoint_is_unaffected(admin, receiver):
    response = admin.post(
        f"{API}/endpoints/", {"url": receiver.url(), "event_types": ["*"], "enabled": True}, format="json"
    )

    assert (response.status_code, response.json()["enabled"]) == (201, True)
    assert receiver.requests == []


# --- the OpenAPI document -----------------------------------------------------------------------------


def test_the_schema_describes_force_and_the_409(db):
    document = APIClient().get(API + "/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = document["paths"]["/api/v1/endpoints/{id}/enable/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    refused = operation["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schemas = document["components"]["schemas"]
    assert schemas[request]["properties"]["force"]["type"] == "boolean"
    assert set(schemas[refused]["properties"]) == {"detail", "test"}
    assert "200" in operation["responses"]
