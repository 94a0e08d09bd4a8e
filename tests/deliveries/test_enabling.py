"""Enabling a disabled endpoint only after a test event got a 2xx (``deliveries.services.enabling``), against real
receivers on 127.0.0.1: what is sent, what the log keeps, what changes on the endpoint and what does not."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, EndpointSchedule
from deliveries.services.enabling import enable_after_test
from events.catalog import CATALOG, TEST_EVENT_TYPE
from events.models import Event, EventSource, EventType
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import disable_endpoint, primary_secret
from tests.factories import failing_for, make_endpoint
from tests.support.receiver import Receiver, Reply
from tests.support.sending import drain_due

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_receivers")]

EXAMPLE = next(spec.example for spec in CATALOG if spec.name == TEST_EVENT_TYPE)
REASON = "No successful delivery for 5 days."
TOKEN = "tok-enable-0001-secret"
# What a worker would have left on the schedule of an endpoint that failed: an open circuit, a pause, a cut
# adaptive limit.
TROUBLED_SCHEDULE = {
    "down_in_a_row": 9,
    "circuit_opened_at": timezone.now() - timedelta(hours=2),
    "next_probe_at": timezone.now() + timedelta(minutes=5),
    "paused_until": timezone.now() + timedelta(minutes=10),
    "pause_reason": "429 with Retry-After",
    "concurrency_limit": 2,
    "concurrency_limited_by": "429",
    "concurrency_limited_at": 3,
}
ENDPOINT_STATE = ["enabled", "disabled_reason", "disabled_at", "updated_at", "url", "auth", "event_types"]
ADAPTIVE_AND_PAUSE = ["paused_until", "pause_reason", "concurrency_limit", "concurrency_limited_by"]


def _disabled(tenant, url: str, **kwargs) -> Endpoint:
    """An endpoint auto-disabled after failing for 6 days, with a troubled schedule."""
    endpoint = make_endpoint(tenant, url, **kwargs).endpoint
    failing_for(endpoint, timedelta(days=6))
    disable_endpoint(endpoint=endpoint, reason=REASON, notify=False)
    EndpointSchedule.objects.create(endpoint=endpoint, **TROUBLED_SCHEDULE)
    return Endpoint.objects.get(pk=endpoint.pk)


def _state(endpoint: Endpoint) -> tuple:
    row = Endpoint.objects.filter(pk=endpoint.pk).values(*ENDPOINT_STATE).get()
    schedule = EndpointSchedule.objects.filter(endpoint=endpoint).values(*ADAPTIVE_AND_PAUSE, "circuit_opened_at")
    return row, schedule.get(), EndpointHealth.objects.get(endpoint=endpoint).failing_since


def _closed_port() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens any more."""
    gone = Receiver().start()
    gone.stop()
    return gone.url()


def _the_test(result) -> tuple[Event, Delivery, Attempt]:
    delivery = Delivery.objects.select_related("event").get(pk=result.delivery_id)
    [attempt] = delivery.attempts.all()
    return delivery.event, delivery, attempt


# --- a still-broken endpoint: refused, with the test's answer, and nothing else changes -------------------


def test_a_500_refuses_with_its_status_and_changes_nothing_on_the_endpoint(tenant, receiver):
    receiver.default = Reply(status=500, body=b"boom")
    endpoint = _disabled(tenant, receiver.url())
    before = _state(endpoint)

    result = enable_after_test(endpoint)

    assert (result.enabled, result.tested, result.status_code, result.error) == (False, True, 500, "HTTP 500")
    assert len(receiver.requests) == 1
    assert _state(endpoint) == before
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, REASON)


def test_the_failed_test_is_in_the_log_as_a_test_events_delivery_with_one_final_attempt(tenant, receiver):
    receiver.default = Reply(status=500, body=b"boom")
    endpoint = _disabled(tenant, receiver.url())

    result = enable_after_test(endpoint)

    event, delivery, attempt = _the_test(result)
    assert (event.event_type_id, event.source, event.data) == (TEST_EVENT_TYPE, EventSource.TEST, EXAMPLE)
    assert (delivery.endpoint_id, delivery.status, delivery.attempt_count) == (endpoint.pk, DeliveryStatus.FAILED, 1)
    assert (delivery.next_attempt_at, delivery.lease_until, delivery.last_status_code) == (None, None, 500)
    assert (attempt.number, attempt.status_code, attempt.outcome, attempt.response_body) == (
        1,
        500,
        AttemptOutcome.FAIL,
        "boom",
    )


def test_a_refused_connection_refuses_with_the_error(tenant):
    endpoint = _disabled(tenant, _closed_port())
    before = _state(endpoint)

    result = enable_after_test(endpoint)

    assert (result.enabled, result.tested, result.status_code) == (False, True, None)
    assert result.error.startswith("Connection refused by 127.0.0.1 port")
    assert _state(endpoint) == before
    _, delivery, attempt = _the_test(result)
    assert (delivery.status, attempt.outcome, attempt.error) == (
        DeliveryStatus.FAILED,
        AttemptOutcome.FAIL,
        result.error,
    )


def test_a_410_refuses_and_keeps_the_endpoints_own_reason(tenant, receiver):
    receiver.default = Reply(status=410)
    endpoint = _disabled(tenant, receiver.url())

    result = enable_after_test(endpoint)

    assert (result.enabled, result.status_code) == (False, 410)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, REASON)


def test_a_receiver_slower_than_the_endpoints_timeout_refuses_within_it(tenant, receiver):
    receiver.default = Reply(delay=3.0)
    endpoint = _disabled(tenant, receiver.url(), timeout_s=0.5)

    result = enable_after_test(endpoint)

    assert (result.enabled, result.status_code) == (False, None)
    assert result.error == "Connected, but no response within 0.5 s: the receiver is too slow or stuck."
    assert Endpoint.objects.get(pk=endpoint.pk).enabled is False


def test_the_address_policy_applies_to_the_test(tenant, receiver, settings):
    endpoint = _disabled(tenant, receiver.url())
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}

    result = enable_after_test(endpoint)

    assert result.enabled is False
    assert result.error.startswith("Refused by the address policy")
    assert receiver.requests == []
    assert Endpoint.objects.get(pk=endpoint.pk).enabled is False


def test_the_error_never_shows_the_endpoints_credentials(tenant, receiver):
    receiver.default = Reply(status=401, body=f"bad token {TOKEN}".encode())
    endpoint = _disabled(tenant, receiver.url(), auth_type="bearer", auth={"token": TOKEN})

    result = enable_after_test(endpoint)

    assert (result.enabled, result.error) == (False, "HTTP 401")
    _, _, attempt = _the_test(result)
    assert TOKEN not in json.dumps(attempt.request_headers)


def test_no_test_event_no_enabling(tenant, receiver):
    endpoint = _disabled(tenant, receiver.url())
    EventType.objects.filter(name=TEST_EVENT_TYPE).update(archived=True)

    result = enable_after_test(endpoint)

    assert (result.enabled, result.tested, result.delivery_id) == (False, False, None)
    assert result.error == "No test event could be sent: Unknown event type 'webhook.test'; see the event-type catalog."
    assert receiver.requests == []
    assert Endpoint.objects.get(pk=endpoint.pk).enabled is False


# --- a working endpoint: enabled, with a fresh start ----------------------------------------------------


def test_a_200_enables_and_restarts_the_failing_clock(tenant, receiver):
    endpoint = _disabled(tenant, receiver.url())

    result = enable_after_test(endpoint)

    assert (result.enabled, result.tested, result.status_code, result.error) == (True, True, 200, "")
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert (stored.enabled, stored.disabled_reason, stored.disabled_at) == (True, "", None)
    assert (endpoint.enabled, endpoint.disabled_reason) == (True, "")  # the caller's copy too
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since is None
    _, delivery, attempt = _the_test(result)
    assert (delivery.status, attempt.outcome, attempt.status_code) == (DeliveryStatus.SUCCEEDED, "success", 200)


def test_a_200_closes_the_circuit_ends_the_pause_and_forgets_the_adaptive_limit(tenant, receiver):
    endpoint = _disabled(tenant, receiver.url())

    enable_after_test(endpoint)

    schedule = EndpointSchedule.objects.get(endpoint=endpoint)
    assert (schedule.down_in_a_row, schedule.circuit_opened_at, schedule.next_probe_at) == (0, None, None)
    assert (schedule.paused_until, schedule.pause_reason) == (None, "")
    assert (schedule.concurrency_limit, schedule.concurrency_limited_by, schedule.concurrency_limited_at) == (
        None,
        "",
        None,
    )


def test_the_test_request_is_signed_and_carries_the_auth_and_custom_headers(tenant, receiver):
    endpoint = _disabled(
        tenant, receiver.url(), auth_type="bearer", auth={"token": TOKEN}, custom_headers={"X-Env": "staging"}
    )

    result = enable_after_test(endpoint)

    [request] = receiver.requests
    Webhook(primary_secret(endpoint)).verify(request.body, request.headers)  # raises if the signature is wrong
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-env"] == "staging"
    assert request.headers["webhook-id"] == Delivery.objects.get(pk=result.delivery_id).event_id
    body = json.loads(request.body)
    assert (body["type"], body["data"], body["tenant_id"]) == (TEST_EVENT_TYPE, EXAMPLE, tenant.pk)


def test_the_test_body_follows_the_endpoints_payload_shape(tenant, receiver):
    endpoint = _disabled(tenant, receiver.url(), payload_format="custom", payload_shape="{kind: type, what: data}")

    result = enable_after_test(endpoint)

    assert result.enabled is True
    assert json.loads(receiver.requests[0].body) == {"kind": TEST_EVENT_TYPE, "what": EXAMPLE}


# --- force, and an endpoint already enabled: no test ----------------------------------------------------


def test_force_enables_without_any_request(tenant, receiver):
    receiver.default = Reply(status=500)
    endpoint = _disabled(tenant, receiver.url())

    result = enable_after_test(endpoint, force=True)

    assert (result.enabled, result.tested, result.delivery_id) == (True, False, None)
    assert receiver.requests == []
    assert not Event.objects.filter(source=EventSource.TEST).exists()
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert (stored.enabled, stored.disabled_reason) == (True, "")
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since is None
    schedule = EndpointSchedule.objects.get(endpoint=endpoint)
    assert (schedule.circuit_opened_at, schedule.paused_until, schedule.concurrency_limit) == (None, None, None)


def test_an_enabled_endpoint_is_answered_as_it_is_without_a_test(tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=6, concurrency_limited_by="429")

    result = enable_after_test(endpoint)

    assert (result.enabled, result.tested) == (True, False)
    assert receiver.requests == []
    assert not Delivery.objects.exists()
    assert EndpointSchedule.objects.get(endpoint=endpoint).concurrency_limit == 6


# --- the test delivery is the enabling request's own while it is sent -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_draining_meanwhile_leaves_the_test_delivery_to_the_request(tenant, receiver):
    """A worker would cancel a delivery to a disabled endpoint; the test's is leased to the request from the
    moment it is written, so a worker that drains while the test request is open takes nothing."""
    endpoint = _disabled(tenant, receiver.url())
    drained_meanwhile = []

    def answer_after_a_drain(request):
        drained_meanwhile.append(drain_due())
        connection.close()  # this thread's, opened by the drain
        return Reply()

    receiver.responder = answer_after_a_drain

    result = enable_after_test(endpoint)

    assert drained_meanwhile == [0]
    assert result.enabled is True
    delivery = Delivery.objects.get(pk=result.delivery_id)
    assert (delivery.status, delivery.attempt_count, delivery.lease_until) == (DeliveryStatus.SUCCEEDED, 1, None)
