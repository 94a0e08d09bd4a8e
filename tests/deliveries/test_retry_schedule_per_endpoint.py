"""An endpoint's own retry schedule decides when a failed delivery is tried again, and when it fails for good: claimed,
sent to a real receiver answering 500, recorded as the worker records it (``claim``, ``send_one``,
``write_results``)."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.retry_policy import schedule_for
from deliveries.services.recording import write_results
from deliveries.services.sending import claim, send_one
from ground.conf import webhookhub_settings
from subscriptions.services import update_endpoint
from tests.factories import make_endpoint
from tests.support.receiver import Reply
from webhookhub import publish

pytestmark = pytest.mark.django_db

JITTER = 0.2


def _attempt(created) -> Delivery:
    """Make the endpoint's one pending delivery due, claim it, send it, record the answer; the delivery re-read."""
    Delivery.objects.filter(endpoint=created.endpoint, status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )
    [delivery], _ = claim(owner="worker-a", now=timezone.now(), lease_seconds=60, capacity=10)
    config = webhookhub_settings()
    write_results([send_one(delivery, [created.secret], config)], [], config)
    delivery.refresh_from_db()
    return delivery


def _waits(delivery: Delivery, seconds: float) -> bool:
    """The delivery's next attempt is ``seconds`` after its last one started, within the jitter."""
    started = Attempt.objects.filter(delivery=delivery).order_by("-number")[0].started_at
    assert delivery.next_attempt_at is not None
    waited = (delivery.next_attempt_at - started).total_seconds()
    return seconds * (1 - JITTER) - 1 <= waited <= seconds * (1 + JITTER) + 1


@pytest.fixture
def failing(receiver, loopback_receivers, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_JITTER": JITTER}
    receiver.responder = lambda request: Reply(status=500, body=b"down")
    return receiver


def test_a_500_is_retried_on_the_endpoints_own_schedule_then_fails(tenant, failing):
    created = make_endpoint(tenant, failing.url(), retry_schedule=[30, 600])
    publish(tenant=tenant, type="message.received", data={})

    first = _attempt(created)
    assert (first.status, first.attempt_count) == (DeliveryStatus.PENDING, 1)
    assert _waits(first, 30)  # not the deployment's 5 s

    second = _attempt(created)
    assert (second.status, second.attempt_count) == (DeliveryStatus.PENDING, 2)
    assert _waits(second, 600)

    third = _attempt(created)
    assert (third.status, third.attempt_count, third.next_attempt_at) == (DeliveryStatus.FAILED, 3, None)
    assert len(failing.requests) == 3
    assert list(Attempt.objects.filter(delivery=third).order_by("number").values_list("outcome", flat=True)) == [
        "retry",
        "retry",
        "fail",
    ]


def test_an_empty_schedule_means_one_attempt(tenant, failing):
    created = make_endpoint(tenant, failing.url(), retry_schedule=[])
    publish(tenant=tenant, type="message.received", data={})

    delivery = _attempt(created)

    assert (delivery.status, delivery.attempt_count) == (DeliveryStatus.FAILED, 1)


def test_a_named_schedule_is_the_operators(tenant, failing, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULES": {"slow": [7200]}}
    created = make_endpoint(tenant, failing.url(), retry_schedule="slow")
    publish(tenant=tenant, type="message.received", data={})

    first = _attempt(created)
    assert _waits(first, 7200)
    assert _attempt(created).status == DeliveryStatus.FAILED


def test_a_changed_schedule_applies_to_the_next_decision_of_a_pending_delivery(tenant, failing):
    created = make_endpoint(tenant, failing.url(), retry_schedule=[30, 30, 30])
    publish(tenant=tenant, type="message.received", data={})
    assert _waits(_attempt(created), 30)

    update_endpoint(endpoint=created.endpoint, retry_schedule=[3600, 3600])

    assert _waits(_attempt(created), 3600)


def test_no_schedule_is_the_deployments(tenant, failing, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULE": [900]}
    created = make_endpoint(tenant, failing.url())
    publish(tenant=tenant, type="message.received", data={})

    assert _waits(_attempt(created), 900)
    assert _attempt(created).status == DeliveryStatus.FAILED


def test_a_schedule_the_operator_removed_falls_back_to_the_deployments_and_warns_once(
    tenant, failing, settings, caplog
):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULES": {"gone": [5000]}, "RETRY_SCHEDULE": [900, 900]}
    created = make_endpoint(tenant, failing.url(), retry_schedule="gone")
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULES": {"other": [10]}}
    publish(tenant=tenant, type="message.received", data={})

    with caplog.at_level(logging.WARNING, logger="deliveries.retry_policy"):
        assert _waits(_attempt(created), 900)
        assert _waits(_attempt(created), 900)

    warnings = [record for record in caplog.records if record.name == "deliveries.retry_policy"]
    assert len(warnings) == 1 and "'gone' is no longer defined" in warnings[0].getMessage()


SCHEDULE_FOR = [
    (None, (5.0, 300.0)),
    ([1, 2.5], (1, 2.5)),
    ([], ()),
    ("quick", (10, 20)),
    ("unknown-name", (5.0, 300.0)),
]


@pytest.mark.parametrize(("retry_schedule", "delays"), SCHEDULE_FOR)
def test_schedule_for(retry_schedule, delays):
    config = {"RETRY_SCHEDULE": [5.0, 300.0], "RETRY_SCHEDULES": {"quick": [10, 20]}}

    assert schedule_for(retry_schedule, config) == delays


def test_a_delivery_claimed_long_after_a_schedule_change_keeps_its_attempt_count(tenant, failing):
    """Shortening the schedule below the attempts made fails the delivery at its next failure, not at once."""
    created = make_endpoint(tenant, failing.url(), retry_schedule=[30, 30, 30])
    publish(tenant=tenant, type="message.received", data={})
    _attempt(created)
    _attempt(created)
    update_endpoint(endpoint=created.endpoint, retry_schedule=[30])
    waiting = Delivery.objects.get(endpoint=created.endpoint)
    assert waiting.status == DeliveryStatus.PENDING and waiting.next_attempt_at > timezone.now() - timedelta(1)

    assert _attempt(created).status == DeliveryStatus.FAILED
