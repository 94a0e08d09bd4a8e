"""Send leases: a worker renews what it holds (the heartbeat), and only what it still holds."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.services.recording import write_results
from deliveries.services.sending import claim, prepare, renew_leases, send_one
from ground.conf import webhookhub_settings
from tests.factories import make_endpoint
from webhookhub import publish

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_receivers")]


@pytest.fixture
def pending(tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint

    def make(count: int) -> list[Delivery]:
        events = [publish(tenant=tenant, type="message.received", data={"n": n}) for n in range(count)]
        return list(Delivery.objects.filter(event__in=events, endpoint=endpoint))

    return make


def test_renewal_extends_the_lease_in_the_database_and_in_the_claim(pending):
    pending(3)
    now = timezone.now()
    held, _ = claim(owner="worker-a", now=now, lease_seconds=30, capacity=10)

    later = now + timedelta(seconds=20)
    assert renew_leases(held, now=later, lease_seconds=30) == 3

    expected = later + timedelta(seconds=30)
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in held]).values_list("lease_until", flat=True)) == {expected}
    assert {delivery.claimed_lease for delivery in held} == {expected}


def test_a_lease_taken_over_by_another_worker_is_not_renewed(pending):
    pending(2)
    now = timezone.now()
    mine, _ = claim(owner="worker-a", now=now, lease_seconds=30, capacity=10)
    # My lease ran out and another worker claimed the first delivery.
    taken_at = now + timedelta(seconds=31)
    theirs, _ = claim(owner="worker-b", now=taken_at, lease_seconds=30, capacity=1)
    assert [d.pk for d in theirs] in ([mine[0].pk], [mine[1].pk])

    assert renew_leases(mine, now=taken_at, lease_seconds=30) == 1

    taken = Delivery.objects.get(pk=theirs[0].pk)
    assert taken.lease_until == theirs[0].claimed_lease  # still theirs


def test_a_result_recorded_after_renewal_is_kept(pending, receiver):
    [delivery] = pending(1)
    now = timezone.now()
    [held], _ = claim(owner="worker-a", now=now, lease_seconds=30, capacity=10)
    config = webhookhub_settings()
    sent = send_one(held, prepare([held], now).secrets[held.endpoint_id], config)

    renew_leases([held], now=now + timedelta(seconds=10), lease_seconds=30)
    write_results([sent], [], config)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    assert len(receiver.requests) == 1


def test_renewing_nothing_is_a_no_op():
    assert renew_leases([], now=timezone.now(), lease_seconds=30) == 0
