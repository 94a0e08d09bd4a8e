"""With NOTIFY wake-ups (PostgreSQL) a worker hears of new work and claims it: no doorbell, no polling."""

import pytest

from deliveries.worker import Worker
from ground.conf import webhookhub_settings
from tests.factories import make_endpoint
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_receivers")]


def test_a_listening_worker_sends_what_is_published_without_a_doorbell(tenant, receiver, wake_ups):
    make_endpoint(tenant, receiver.url())
    worker = Worker(webhookhub_settings())
    try:
        wait_until(lambda: worker.listening, timeout=10, message="the worker never listened")

        events = [publish(tenant=tenant, type="message.received", data={"n": n}) for n in range(3)]

        arrived = receiver.wait_for(3, timeout=10)
        assert sorted(request.headers["webhook-id"] for request in arrived) == sorted(event.id for event in events)
    finally:
        assert worker.close(timeout=10)


def test_a_worker_woken_by_the_broker_does_not_listen(tenant, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "WAKE_UP": "broker"}
    worker = Worker(webhookhub_settings())
    try:
        assert not worker.listening
    finally:
        worker.close(timeout=10)
