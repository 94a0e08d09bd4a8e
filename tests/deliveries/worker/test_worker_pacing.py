"""The worker paces each endpoint it owns: limits, a stopped lane, ownership handed back.

Driven through the production path (a ``Worker`` claims, sends to a real receiver on 127.0.0.1,
records from its own thread); the cluster-wide behaviour with real worker processes is in
``tests/e2e/test_scheduling_e2e.py``.
"""

import pytest

from deliveries.models import Attempt, Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import CIRCUIT_THRESHOLD
from subscriptions.models import Endpoint
from tests.factories import make_endpoint
from tests.support.processes import free_port
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from webhookhub import publish

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the worker records from its own connection
    pytest.mark.usefixtures("loopback_receivers"),
]


def _endpoint_with_backlog(tenant, url: str, count: int, **limits) -> Endpoint:
    endpoint = make_endpoint(tenant, url).endpoint
    Endpoint.objects.filter(pk=endpoint.pk).update(**limits)
    for n in range(count):
        publish(tenant=tenant, type="message.received", data={"n": n}, endpoint_ids=[endpoint.pk])
    return endpoint


def _most_within(times: list[float], window: float) -> int:
    return max(sum(start <= other < start + window for other in times) for start in times)


def test_an_endpoint_never_has_more_requests_open_than_its_max_in_flight(tenant, receiver):
    receiver.default = Reply(delay=0.3)
    endpoint = _endpoint_with_backlog(tenant, receiver.url(), 12, max_in_flight=3)

    drain_due()

    starts = sorted(request.at for request in receiver.requests)
    assert len(starts) == 12
    assert _most_within(starts, 0.28) == 3  # each answer takes 0.3 s: a fourth waits for one of them
    assert Attempt.objects.filter(delivery__endpoint=endpoint).count() == 12  # no attempt without a request


def test_the_rate_limit_spaces_the_starts(tenant, receiver):
    _endpoint_with_backlog(tenant, receiver.url(), 9, rate_limit_per_s=4)

    drain_due()

    starts = sorted(request.at for request in receiver.requests)
    assert len(starts) == 9
    assert _most_within(starts, 1.0) <= 5  # rate + 1
    # 9 starts at 4 a second: 8 gaps of 0.25 s, or 7 after a first burst of two (rate + 1). Measured from
    # the second arrival: the first request also opens the connection, and arrived 0.3 s late once in CI.
    assert starts[-1] - starts[1] >= 1.6


def test_a_refusing_endpoint_stops_its_lane_when_the_circuit_opens_and_the_rest_wait_unattempted(tenant):
    endpoint = _endpoint_with_backlog(tenant, f"http://127.0.0.1:{free_port()}/hook", 40, max_in_flight=2)

    drain_due()

    attempts = Attempt.objects.filter(delivery__endpoint=endpoint).count()
    assert CIRCUIT_THRESHOLD <= attempts <= CIRCUIT_THRESHOLD + 2  # the lane stops at the answer that opens it
    untouched = Delivery.objects.filter(endpoint=endpoint, attempt_count=0)
    assert untouched.count() == 40 - attempts
    assert not untouched.exclude(status=DeliveryStatus.PENDING).exists()
    assert not untouched.filter(lease_until__isnull=False).exists()  # given back, not left leased
    assert EndpointSchedule.objects.get(endpoint=endpoint).circuit_opened_at is not None


def test_retry_after_pauses_the_whole_endpoint_at_once(tenant, receiver):
    receiver.default = Reply(status=429, headers={"Retry-After": "120"})
    endpoint = _endpoint_with_backlog(tenant, receiver.url(), 20, max_in_flight=1)

    drain_due()

    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(endpoint=endpoint, attempt_count=0, lease_until__isnull=True).count() == 19
    schedule = EndpointSchedule.objects.get(endpoint=endpoint)
    assert schedule.paused_until is not None and schedule.pause_reason == "Retry-After from the endpoint"


def test_a_closed_worker_hands_its_endpoints_back(tenant, receiver):
    endpoint = _endpoint_with_backlog(tenant, receiver.url(), 3)

    drain_due()

    schedule = EndpointSchedule.objects.get(endpoint=endpoint)
    assert (schedule.owner, schedule.owned_until) == ("", None)
    assert len(receiver.requests) == 3
