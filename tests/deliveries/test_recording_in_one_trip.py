"""A few successes are recorded in one round trip, outside any transaction as the worker records them, and
write exactly what the step-by-step recording writes; when what it checks does not hold, nothing of it is
written and the step-by-step recording writes the batch."""

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from deliveries.http import HttpResult
from deliveries.models import Attempt, AttemptRollup, AttemptTotal, Delivery, DeliveryStatus, EndpointSchedule
from deliveries.services import recording
from deliveries.services.recording import decide_results, write
from deliveries.services.sending import SendResult, claim
from ground.conf import webhookhub_settings
from subscriptions.models import EndpointHealth
from tests.factories import endpoint_for
from tests.support.round_trips import round_trips
from webhookhub import publish

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="one round trip: PostgreSQL"),
]


def _claimed(endpoint, count: int) -> list[Delivery]:
    for n in range(count):
        publish(tenant=endpoint.tenant, type="message.received", data={"n": n})
    deliveries, _ = claim(
        owner="worker-a", now=timezone.now(), lease_seconds=60, capacity=count, endpoint_ids=[endpoint.pk]
    )
    assert len(deliveries) == count
    return deliveries


def _answered(deliveries: list[Delivery], status: int = 200):
    sent = [SendResult(delivery, timezone.now(), {}, HttpResult(status, duration_ms=12)) for delivery in deliveries]
    return decide_results(sent, [], webhookhub_settings())


def _round_trips(recorded) -> int:
    return round_trips(lambda: write(recorded))


def _written(endpoint) -> dict:
    """What recording writes for one endpoint (and its tenant), without ids and clocks."""
    deliveries = Delivery.objects.filter(endpoint=endpoint)
    health = EndpointHealth.objects.get(endpoint=endpoint)
    schedule = EndpointSchedule.objects.get(endpoint=endpoint)
    return {
        "deliveries": sorted(deliveries.values_list("status", "attempt_count", "lease_until", "last_status_code")),
        "attempts": sorted(
            Attempt.objects.filter(delivery__endpoint=endpoint).values_list(
                "number", "status_code", "outcome", "duration_ms", "request_made"
            )
        ),
        "rollups": sorted(
            AttemptRollup.objects.filter(endpoint=endpoint).values_list("granularity", "successes", "responses")
        ),
        "totals": AttemptTotal.objects.filter(tenant_id=endpoint.tenant_id).aggregate(
            Sum("succeeded"), Sum("requests"), Sum("retrying"), Sum("failed")
        ),
        "health": (health.last_status_code, health.failed_in_a_row, health.failing_since, health.last_error),
        "schedule": (schedule.down_in_a_row, schedule.circuit_opened_at, schedule.next_probe_at),
    }


def test_successes_go_in_one_round_trip_and_write_what_the_step_by_step_recording_writes(
    tenant, other_tenant, monkeypatch
):
    one_trip, step_by_step = endpoint_for(tenant), endpoint_for(other_tenant)
    batch = _answered(_claimed(one_trip, 3))
    assert _round_trips(batch) == 1

    monkeypatch.setattr(recording, "ONE_TRIP_MAX", 0)
    compared = _answered(_claimed(step_by_step, 3))
    assert _round_trips(compared) > 1

    assert _written(one_trip) == _written(step_by_step)
    assert _written(one_trip)["deliveries"] == [(DeliveryStatus.SUCCEEDED, 1, None, 200)] * 3
    assert _written(one_trip)["totals"]["succeeded__sum"] == 3


def test_a_lost_lease_writes_nothing_in_one_trip_and_the_rest_step_by_step(tenant, caplog):
    endpoint = endpoint_for(tenant)
    deliveries = _claimed(endpoint, 3)
    taken = deliveries[0]
    Delivery.objects.filter(pk=taken.pk).update(lease_until=taken.lease_until + timezone.timedelta(seconds=5))

    write(_answered(deliveries))

    assert sorted(Attempt.objects.values_list("delivery_id", flat=True)) == sorted(d.pk for d in deliveries[1:])
    row = Delivery.objects.get(pk=taken.pk)
    assert (row.status, row.attempt_count) == (DeliveryStatus.PENDING, 0)  # left to whoever holds it now
    assert AttemptTotal.objects.aggregate(Sum("succeeded"))["succeeded__sum"] == 2
    assert "1 result(s) not recorded" in caplog.text


def test_a_success_that_moves_an_endpoints_health_is_written_step_by_step(tenant):
    endpoint = endpoint_for(tenant)
    [delivery] = _claimed(endpoint, 1)
    EndpointSchedule.objects.filter(endpoint=endpoint).update(down_in_a_row=3)

    write(_answered([delivery]))

    assert EndpointSchedule.objects.get(endpoint=endpoint).down_in_a_row == 0  # the answer reset the streak
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED
    assert Attempt.objects.filter(delivery=delivery).count() == 1


def test_failures_are_recorded_step_by_step(tenant):
    endpoint = endpoint_for(tenant)
    [delivery] = _claimed(endpoint, 1)
    batch = _answered([delivery], status=500)

    assert _round_trips(batch) > 1
    assert EndpointSchedule.objects.get(endpoint=endpoint).down_in_a_row == 1
    assert EndpointHealth.objects.get(endpoint=endpoint).failed_in_a_row == 1
