"""Per-endpoint scheduling with real worker processes: fairness, backpressure, cluster-wide limits, the circuit."""

import time

import pytest

from deliveries.models import Attempt, Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import PROBE_BACKOFF_SECONDS
from tests.factories import TenantFactory, make_endpoint
from tests.support.bounds import bound
from tests.support.processes import E2E_WEBHOOKHUB, free_port
from tests.support.receiver import Receiver, Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _publish(tenant, count: int) -> list[str]:
    return [publish(tenant=tenant, type="message.received", data={"n": n}).id for n in range(count)]


def _all_settled(endpoint_ids: list[str]):
    def check():
        pending = Delivery.objects.filter(endpoint_id__in=endpoint_ids, status=DeliveryStatus.PENDING).exists()
        return not pending

    return check


def test_a_backlog_on_one_tenant_does_not_delay_another(e2e, tenant, receiver):
    quiet_receiver = Receiver().start()
    try:
        receiver.default = Reply(status=200, delay=0.02)
        make_endpoint(tenant, receiver.url())
        quiet = TenantFactory()
        make_endpoint(quiet, quiet_receiver.url())
        _publish(tenant, 1500)  # the noisy tenant's backlog, 8 requests at a time: about 4 s of work
        e2e.start_all()
        receiver.wait_for(50, timeout=30)  # the backlog is draining

        quiet_events = []
        for n in range(5):
            quiet_events.append((publish(tenant=quiet, type="message.received", data={"n": n}).id, time.time()))
            time.sleep(0.5)

        arrived = {r.headers["webhook-id"]: r.at for r in quiet_receiver.wait_for(5, timeout=30)}
        latencies = [arrived[event_id] - published_at for event_id, published_at in quiet_events]
        # Its doorbell starts it at once; were it lost, the next sweep would. The backlog is no part of it.
        assert max(latencies) < bound(E2E_WEBHOOKHUB["SWEEP_INTERVAL_SECONDS"]), latencies
        assert len(receiver.requests) < 1500  # they arrived while the backlog was still there
    finally:
        quiet_receiver.stop()


def test_a_slow_endpoint_gets_its_deliveries_at_its_pace_without_spent_retries(e2e, tenant, receiver):
    receiver.default = Reply(status=200, delay=3)
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    e2e.start_all()

    events = _publish(tenant, 48)

    wait_until(_all_settled([endpoint.pk]), timeout=60, message="not all 48 delivered within 60 s")
    assert {r.headers["webhook-id"] for r in receiver.requests} == set(events)
    assert Attempt.objects.filter(delivery__endpoint=endpoint).count() == 48  # one request each, no "not sent"
    assert not Attempt.objects.filter(delivery__endpoint=endpoint, request_made=False).exists()
    assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"succeeded"}


def test_the_rate_limit_holds_across_two_worker_nodes(e2e, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url(), rate_limit_per_s=5).endpoint
    e2e.start_worker()  # two nodes, each -c 2: four processes claiming
    e2e.start_all()

    _publish(tenant, 50)

    wait_until(_all_settled([endpoint.pk]), timeout=60, message="not all 50 delivered")
    starts = sorted(request.at for request in receiver.requests)
    busiest = max(sum(start <= other < start + 1 for other in starts) for start in starts)
    assert len(starts) == 50
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:], strict=False)]
    assert busiest <= 6, f"{busiest} requests started within one second; gaps {gaps}"
    assert starts[-1] - starts[0] >= 9.0  # 50 at 5/s


def test_a_down_endpoint_opens_its_circuit_and_drains_when_back(e2e, tenant):
    port = free_port()  # nothing listens: connections are refused
    endpoint = make_endpoint(tenant, f"http://127.0.0.1:{port}/hook").endpoint
    e2e.start_all()
    events = _publish(tenant, 40)

    wait_until(
        lambda: EndpointSchedule.objects.filter(endpoint=endpoint, circuit_opened_at__isnull=False).exists(),
        timeout=20,
        message="the circuit never opened",
    )
    time.sleep(8)  # down a while longer: only probes go out
    attempts_while_down = Attempt.objects.filter(delivery__endpoint=endpoint).count()
    assert attempts_while_down <= 12, attempts_while_down  # a first round of 8, then one probe at a time

    back = Receiver(port=port).start()
    try:
        # The next probe is at most the longest backoff away; its success closes the circuit and the 40 go.
        drained = bound(max(PROBE_BACKOFF_SECONDS), E2E_WEBHOOKHUB["SWEEP_INTERVAL_SECONDS"], 40 * 0.01)
        wait_until(_all_settled([endpoint.pk]), timeout=drained, message="the backlog did not drain after recovery")
        assert {r.headers["webhook-id"] for r in back.requests} == set(events)
        assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"succeeded"}
        assert EndpointSchedule.objects.get(endpoint=endpoint).circuit_opened_at is None
    finally:
        back.stop()
