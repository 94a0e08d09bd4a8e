from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services.sweeping import sweep_due
from tests.factories import make_endpoint
from tests.support.broker import captured_queue
from webhookhub import publish
from webhookhub.conf import setting

pytestmark = pytest.mark.django_db

SECOND = timedelta(seconds=1)


@pytest.fixture
def broker():
    with captured_queue() as queue:
        yield queue


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def make_delivery(tenant):
    endpoint = make_endpoint(tenant, "https://93.184.216.34/hook").endpoint
    # An event with no deliveries; each test writes the delivery rows in the state it needs.
    event = publish(tenant=tenant, type="message.received", data={"text": "hi"}, endpoint_ids=[])

    def make(*, next_attempt_at, lease_until=None, status=DeliveryStatus.PENDING) -> Delivery:
        return Delivery.objects.create(
            event=event, endpoint=endpoint, status=status, next_attempt_at=next_attempt_at, lease_until=lease_until
        )

    return make


def _lease(delivery: Delivery) -> datetime | None:
    delivery.refresh_from_db()
    return delivery.lease_until


def test_due_unleased_delivery_is_leased_and_enqueued(make_delivery, now, broker):
    delivery = make_delivery(next_attempt_at=now - SECOND)

    assert sweep_due(now=now) == 1

    lease_until = now + timedelta(seconds=setting("QUEUE_LEASE_SECONDS"))
    assert _lease(delivery) == lease_until
    [(task, (delivery_ids, [lease_token]))] = broker.messages()
    assert (task, delivery_ids) == ("deliveries.send", [delivery.pk])
    assert datetime.fromisoformat(lease_token) == lease_until


def test_delivery_whose_lease_ran_out_is_swept_again(make_delivery, now, broker):
    delivery = make_delivery(next_attempt_at=now - timedelta(minutes=5), lease_until=now - SECOND)

    assert sweep_due(now=now) == 1

    assert _lease(delivery) > now
    assert len(broker.messages()) == 1


def test_delivery_still_leased_is_skipped(make_delivery, now, broker):
    lease_until = now + timedelta(seconds=30)
    delivery = make_delivery(next_attempt_at=now - SECOND, lease_until=lease_until)

    assert sweep_due(now=now) == 0

    assert _lease(delivery) == lease_until
    assert broker.messages() == []


def test_delivery_not_yet_due_is_skipped(make_delivery, now, broker):
    delivery = make_delivery(next_attempt_at=now + SECOND)

    assert sweep_due(now=now) == 0

    assert _lease(delivery) is None
    assert broker.messages() == []


@pytest.mark.parametrize("status", [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED])
def test_finished_delivery_is_skipped(make_delivery, now, broker, status):
    delivery = make_delivery(next_attempt_at=now - SECOND, status=status)

    assert sweep_due(now=now) == 0

    assert _lease(delivery) is None
    assert broker.messages() == []


def test_sweep_respects_the_limit_oldest_first(make_delivery, now, broker):
    deliveries = [make_delivery(next_attempt_at=now - timedelta(minutes=minutes)) for minutes in (1, 5, 3, 4, 2)]
    oldest_first = [d.pk for d in sorted(deliveries, key=lambda d: d.next_attempt_at)]

    assert sweep_due(now=now, limit=2) == 2
    assert sweep_due(now=now, limit=2) == 2

    leased = Delivery.objects.filter(lease_until__isnull=False).values_list("pk", flat=True)
    assert sorted(leased) == sorted(oldest_first[:4])
    batches = sorted(sorted(delivery_ids) for _task, (delivery_ids, _token) in broker.messages())
    assert batches == sorted([sorted(oldest_first[:2]), sorted(oldest_first[2:4])])


def test_sweep_enqueues_in_batches(make_delivery, now, broker, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "DELIVERY_BATCH_SIZE": 2}
    for minutes in range(5):
        make_delivery(next_attempt_at=now - timedelta(minutes=minutes))

    assert sweep_due(now=now) == 5

    sizes = sorted(len(delivery_ids) for _task, (delivery_ids, _token) in broker.messages())
    assert sizes == [1, 2, 2]
