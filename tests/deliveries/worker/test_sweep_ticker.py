"""The worker's sweep ticker: on its turn it rings and sends what is due itself, through the real worker."""

import pytest

from deliveries import worker
from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.services.sweeping import take_sweep_turn
from deliveries.worker.ticker import SweepTicker
from tests.factories import make_endpoint
from tests.support.broker import captured_queue
from tests.support.waiting import wait_for_status
from webhookhub import publish

pytestmark = pytest.mark.django_db(transaction=True)  # the worker's recorder thread has its own connection


@pytest.fixture(autouse=True)
def fresh_worker(loopback_receivers):
    worker.close()  # the next use builds one from this test's settings
    with captured_queue():
        yield
    assert worker.close(), "the worker did not record everything it claimed"


def _pending_delivery(tenant, receiver) -> Delivery:
    make_endpoint(tenant, receiver.url())
    event = publish(tenant=tenant, type="message.received", data={"text": "due"})
    return Delivery.objects.get(event=event)


def test_on_its_turn_a_tick_sends_the_due_delivery_itself(tenant, receiver):
    delivery = _pending_delivery(tenant, receiver)

    assert SweepTicker().tick() == 1

    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == delivery.event_id
    wait_for_status(delivery.event_id, DeliveryStatus.SUCCEEDED, timeout=10)
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", "status_code")) == [(1, 200)]


def test_out_of_turn_a_tick_leaves_the_work_to_the_sweeper_whose_turn_it_is(tenant, receiver):
    delivery = _pending_delivery(tenant, receiver)
    assert take_sweep_turn(interval=60) is True  # beat, or another worker, swept just now

    assert SweepTicker().tick() is None

    delivery.refresh_from_db()
    assert (delivery.status, delivery.lease_until, delivery.attempt_count) == (DeliveryStatus.PENDING, None, 0)
