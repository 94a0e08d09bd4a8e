"""With NOTIFY wake-ups (PostgreSQL) a worker hears of new work and claims it: no doorbell, no polling."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, EndpointSchedule
from deliveries.services.batch_publishing import publish_many
from deliveries.services.wakeups import notify, to_claim
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


def test_notifications_name_what_each_process_claims():
    mine, nobodys, theirs = "host:1:aa", "", "host:2:bb"

    assert to_claim([f"ep_a={mine},ep_b={nobodys}", f"ep_c={theirs}"], owner=mine) == ["ep_a", "ep_b"]
    assert to_claim([f"ep_c={theirs}"], owner=mine) == []  # its owner claims it
    assert to_claim([f"ep_c={theirs}", ""], owner=mine) is None  # a notification naming none: any endpoint


def test_a_worker_leaves_work_another_live_process_owns_to_it(tenant, receiver, wake_ups):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    EndpointSchedule.objects.create(
        endpoint=endpoint, owner="elsewhere:1:aa", owned_until=timezone.now() + timedelta(seconds=60)
    )
    worker = Worker(webhookhub_settings())
    try:
        wait_until(lambda: worker.listening, timeout=10, message="the worker never listened")

        event = publish(tenant=tenant, type="message.received", data={})

        time.sleep(1.0)
        assert receiver.requests == []  # heard, named as another's: not claimed
        assert Delivery.objects.get(event=event).lease_until is None
        EndpointSchedule.objects.filter(endpoint=endpoint).update(owned_until=timezone.now())  # the owner died
        notify()  # as the sweep rings for due work nobody holds: every process looks
        [arrived] = receiver.wait_for(1, timeout=10)
        assert arrived.headers["webhook-id"] == event.id
    finally:
        assert worker.close(timeout=10)


def test_a_backlog_larger_than_one_claim_is_claimed_as_answers_come_without_a_sweep(tenant, receiver, wake_ups):
    make_endpoint(tenant, receiver.url(), max_in_flight=1)  # each claim leases a few only
    worker = Worker(webhookhub_settings())  # no ticker: nothing sweeps
    try:
        wait_until(lambda: worker.listening, timeout=10, message="the worker never listened")

        results = publish_many(
            tenant=tenant, events=[{"type": "message.received", "data": {"n": n}} for n in range(30)]
        )

        arrived = receiver.wait_for(30, timeout=20)
        assert sorted(request.headers["webhook-id"] for request in arrived) == sorted(r.event.id for r in results)
    finally:
        assert worker.close(timeout=10)
