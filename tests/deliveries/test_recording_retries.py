"""Recording is idempotent: a recording transaction that failed (the database went away at commit) and is
tried again writes exactly what one successful recording would have.

The recorder decides a batch once (``decide_results``) and retries ``write`` until the database
takes it. Here each failed try runs every statement of ``write`` and is then rolled back, as a
commit that never reached the database is.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from deliveries.http import HttpResult
from deliveries.models import (
    Attempt,
    AttemptOutcome,
    AttemptRollup,
    AttemptTotal,
    Delivery,
    DeliveryStatus,
    EndpointSchedule,
)
from deliveries.services.recording import Recorded, decide_results, write
from deliveries.services.sending import SendResult, claim
from ground.conf import setting, webhookhub_settings
from ground.task_names import NOTIFY_DISABLED_TASK
from subscriptions.models import EndpointHealth
from tests.factories import endpoint_for, failing_for
from tests.support.broker import captured_queue
from webhookhub import publish

pytestmark = pytest.mark.django_db

FAILED_TRIES = 5


class CommitFailed(Exception):
    pass


def _write_after_failed_tries(recorded: Recorded) -> None:
    for _ in range(FAILED_TRIES):
        with pytest.raises(CommitFailed), transaction.atomic():
            write(recorded)
            raise CommitFailed  # everything ran; the commit did not happen
    write(recorded)


def _claimed(endpoint, count: int = 1):
    for n in range(count):
        publish(tenant=endpoint.tenant, type="message.received", data={"n": n})
    deliveries, _ = claim(owner="worker-a", now=timezone.now(), lease_seconds=60, capacity=count)
    assert len(deliveries) == count
    return deliveries


def _answered(delivery, status: int | None, *, error: str = "") -> SendResult:
    return SendResult(delivery, timezone.now(), {}, HttpResult(status, error=error, duration_ms=1500))


def test_a_failed_answer_recorded_after_failed_tries_is_one_attempt_waiting_for_its_retry(tenant):
    endpoint = endpoint_for(tenant)
    [delivery] = _claimed(endpoint)
    lease = delivery.lease_until
    config = {**webhookhub_settings(), "RETRY_SCHEDULE": [60, 60, 60]}
    recorded = decide_results([_answered(delivery, 500)], [], config)

    _write_after_failed_tries(recorded)

    [attempt] = Attempt.objects.filter(delivery_id=delivery.pk)
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 500, AttemptOutcome.RETRY)
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.status, row.attempt_count, row.lease_until, row.last_error) == (
        DeliveryStatus.PENDING,
        1,
        None,
        "HTTP 500",
    )
    decided = recorded.outcomes[0].decision.next_attempt_at
    assert row.next_attempt_at == decided
    assert recorded.decided_at + timedelta(seconds=48) <= decided <= recorded.decided_at + timedelta(seconds=72)
    # The numbers moved once.
    assert [(r.retries, r.responses) for r in AttemptRollup.objects.filter(endpoint=endpoint)] == [(1, 1), (1, 1)]
    assert [(t.retrying, t.requests) for t in AttemptTotal.objects.filter(tenant_id=tenant.pk)] == [(1, 1)]
    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert (health.failed_in_a_row, health.failing_since) == (1, recorded.decided_at)
    assert EndpointSchedule.objects.get(endpoint=endpoint).down_in_a_row == 1
    # Deciding and writing changed nothing in memory: the claimed delivery is as it was claimed.
    assert (delivery.attempt_count, delivery.status, delivery.lease_until) == (0, DeliveryStatus.PENDING, lease)


def test_the_last_try_recorded_after_failed_tries_fails_the_delivery_once(tenant):
    endpoint = endpoint_for(tenant)
    [delivery] = _claimed(endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=3)
    delivery.attempt_count = 3  # three tries are behind it; the schedule allows four
    config = {**webhookhub_settings(), "RETRY_SCHEDULE": [60, 60, 60]}

    _write_after_failed_tries(decide_results([_answered(delivery, 500)], [], config))

    assert list(Attempt.objects.filter(delivery_id=delivery.pk).values_list("number", "outcome")) == [
        (4, AttemptOutcome.FAIL)
    ]
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.status, row.attempt_count, row.next_attempt_at) == (DeliveryStatus.FAILED, 4, None)


def test_a_batch_of_answers_recorded_after_failed_tries_counts_each_once(tenant):
    endpoint = endpoint_for(tenant)
    deliveries = _claimed(endpoint, 4)
    sent = [_answered(deliveries[0], 500)] + [_answered(delivery, 200) for delivery in deliveries[1:]]

    _write_after_failed_tries(decide_results(sent, [], webhookhub_settings()))

    assert sorted(Attempt.objects.filter(delivery__endpoint=endpoint).values_list("number", flat=True)) == [1] * 4
    assert sorted(Delivery.objects.filter(endpoint=endpoint).values_list("attempt_count", flat=True)) == [1] * 4
    [total] = AttemptTotal.objects.filter(tenant_id=tenant.pk)
    assert (total.succeeded, total.retrying, total.requests) == (3, 1, 4)


def test_auto_disable_recorded_after_failed_tries_disables_once_with_one_notice(
    tenant, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(tenant)
    failing_for(endpoint, timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS")) + timedelta(hours=1))
    [delivery] = _claimed(endpoint)
    recorded = decide_results([_answered(delivery, None, error="Connection refused.")], [], webhookhub_settings())

    with captured_queue() as queue:
        with django_capture_on_commit_callbacks(execute=True):  # the notice is queued when the recording commits
            _write_after_failed_tries(recorded)
        queued = [message for message in queue.messages() if message[0] == NOTIFY_DISABLED_TASK]

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_reason.startswith("No successful delivery since")
    assert queued == [(NOTIFY_DISABLED_TASK, [endpoint.pk, endpoint.disabled_reason])]


def test_a_410_recorded_after_failed_tries_disables_the_endpoint_with_its_reason(tenant):
    endpoint = endpoint_for(tenant)
    [delivery] = _claimed(endpoint)

    _write_after_failed_tries(decide_results([_answered(delivery, 410)], [], webhookhub_settings()))

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (
        False,
        "The endpoint answered 410 Gone: it asked to stop receiving.",
    )
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.status, row.attempt_count) == (DeliveryStatus.FAILED, 1)
