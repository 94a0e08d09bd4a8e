from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, SweepTurn
from deliveries.services.sending import claim
from deliveries.services.sweeping import SweepResult, sweep, sweep_due, take_sweep_turn
from tests.factories import endpoint_for
from webhookhub import publish

pytestmark = pytest.mark.django_db

SECOND = timedelta(seconds=1)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def make_delivery(tenant):
    endpoint = endpoint_for(tenant)
    # An event with no deliveries; each test writes the delivery rows in the state it needs.
    event = publish(tenant=tenant, type="message.received", data={"text": "hi"}, endpoint_ids=[])

    def make(*, next_attempt_at, lease_until=None, status=DeliveryStatus.PENDING) -> Delivery:
        return Delivery.objects.create(
            event=event, endpoint=endpoint, status=status, next_attempt_at=next_attempt_at, lease_until=lease_until
        )

    return make


DRAIN = ("deliveries.drain", [])


def test_due_unowned_delivery_rings_a_drain(make_delivery, now, broker):
    delivery = make_delivery(next_attempt_at=now - SECOND)

    assert sweep_due(now=now).rings == 1

    assert broker.messages() == [DRAIN]
    delivery.refresh_from_db()
    assert delivery.lease_until is None  # the sweeper only rings; the drain claims


def test_with_notify_wake_ups_a_sweep_wakes_every_worker_once(make_delivery, now, wake_ups):
    for _ in range(3):
        make_delivery(next_attempt_at=now - SECOND)

    assert sweep_due(now=now) == SweepResult(due=3, rings=1)

    assert wake_ups.heard() == [""]  # any endpoint: every listening worker claims


def test_delivery_whose_lease_ran_out_is_swept_again(make_delivery, now, broker):
    make_delivery(next_attempt_at=now - timedelta(minutes=5), lease_until=now - SECOND)

    assert sweep_due(now=now).rings == 1

    assert broker.messages() == [DRAIN]


def test_delivery_still_leased_is_skipped(make_delivery, now, broker):
    make_delivery(next_attempt_at=now - SECOND, lease_until=now + timedelta(seconds=30))

    assert sweep_due(now=now).rings == 0

    assert broker.messages() == []


def test_delivery_not_yet_due_is_skipped(make_delivery, now, broker):
    make_delivery(next_attempt_at=now + SECOND)

    assert sweep_due(now=now).rings == 0

    assert broker.messages() == []


@pytest.mark.parametrize("status", [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED])
def test_finished_delivery_is_skipped(make_delivery, now, broker, status):
    make_delivery(next_attempt_at=now - SECOND, status=status)

    assert sweep_due(now=now).rings == 0

    assert broker.messages() == []


def test_one_drain_per_batch_of_due_deliveries(make_delivery, now, broker, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "DRAIN_BATCH_SIZE": 2}
    for minutes in range(5):
        make_delivery(next_attempt_at=now - timedelta(minutes=minutes))

    assert sweep_due(now=now).rings == 3

    assert broker.messages() == [DRAIN] * 3


def test_rings_are_bounded(make_delivery, now, broker, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "DRAIN_BATCH_SIZE": 1, "SWEEP_MAX_DOORBELLS": 2}
    for minutes in range(5):
        make_delivery(next_attempt_at=now - timedelta(minutes=minutes))

    assert sweep_due(now=now).rings == 2


def test_drain_claims_the_most_overdue_first_and_never_twice(make_delivery, now):
    deliveries = [make_delivery(next_attempt_at=now - timedelta(minutes=minutes)) for minutes in (1, 5, 3, 4, 2)]
    oldest_first = [d.pk for d in sorted(deliveries, key=lambda d: d.next_attempt_at)]

    first, _ = claim(owner="worker-a", now=now, lease_seconds=60, capacity=2)
    second, _ = claim(owner="worker-a", now=now, lease_seconds=60, capacity=2)

    assert sorted(d.pk for d in first) == sorted(oldest_first[:2])
    assert sorted(d.pk for d in second) == sorted(oldest_first[2:4])
    leased = Delivery.objects.filter(lease_until=now + timedelta(seconds=60)).values_list("pk", flat=True)
    assert sorted(leased) == sorted(oldest_first[:4])


def test_one_sweeper_per_interval_takes_the_turn():
    assert take_sweep_turn(interval=60) is True  # the first sweeper ever
    assert take_sweep_turn(interval=60) is False  # beat and the other workers this interval
    assert take_sweep_turn(interval=60) is False


def test_the_turn_comes_round_again_when_the_interval_has_passed():
    assert take_sweep_turn(interval=60) is True
    SweepTurn.objects.update(next_sweep_at=timezone.now() - SECOND)

    assert take_sweep_turn(interval=60) is True
    assert take_sweep_turn(interval=60) is False


def test_a_sweep_out_of_turn_does_nothing(make_delivery, now, broker):
    make_delivery(next_attempt_at=now - SECOND)

    first = sweep()
    second = sweep()

    assert first == SweepResult(due=1, rings=1)
    assert second is None
    assert broker.messages() == [DRAIN]
