"""The worker warns before an auto-disable: sending to a failing endpoint through the real worker (claim, send,
record, against a real receiver) queues one warning per point passed, never from its sending threads."""

from datetime import timedelta

import pytest

from accounts.models import Role
from deliveries.models import Attempt
from ground.task_names import NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.tasks import notify_disable_warning_task
from tests.factories import MembershipFactory, failing_for, make_endpoint
from tests.support.broker import captured_queue
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from webhookhub import publish

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the worker records from its own connection
    pytest.mark.usefixtures("loopback_receivers"),
]


def _notices(queue) -> list:
    return [
        message for message in queue.messages() if message[0] in (NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK)
    ]


def test_a_failing_endpoint_past_a_point_is_warned_once_across_batches(tenant, receiver, mailoutbox):
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN).user
    receiver.default = Reply(status=500, body=b"database is down")
    endpoint = make_endpoint(tenant, receiver.url(), name="orders").endpoint
    since = failing_for(endpoint, timedelta(hours=1, minutes=1)).failing_since  # past the 1 h point

    with captured_queue() as queue:
        for n in range(3):
            publish(tenant=tenant, type="message.received", data={"n": n}, endpoint_ids=[endpoint.pk])
            drain_due()
        notices = _notices(queue)

    assert Attempt.objects.filter(delivery__endpoint=endpoint).count() == 3
    assert notices == [(NOTIFY_DISABLE_WARNING_TASK, [endpoint.pk, since.isoformat()])]
    assert mailoutbox == []  # the worker sends no mail itself

    assert notify_disable_warning_task(*notices[0][1]) == 1  # what a Celery worker runs for that message

    [mail] = mailoutbox
    assert mail.to == [admin.email]
    assert "Last answer: HTTP 500" in mail.body
    assert "will be disabled in 4 days 23 hours" in mail.subject  # 5 d less 1 h 1 min


def test_a_short_own_period_is_enforced_by_the_worker(tenant, receiver):
    receiver.default = Reply(status=500)
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    Endpoint.objects.filter(pk=endpoint.pk).update(auto_disable_after_seconds=3600)
    failing_for(endpoint, timedelta(hours=1))

    with captured_queue() as queue:
        publish(tenant=tenant, type="message.received", data={}, endpoint_ids=[endpoint.pk])
        drain_due()
        notices = _notices(queue)

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "(1 hour or more of failures)" in endpoint.disabled_reason
    assert notices == [(NOTIFY_DISABLED_TASK, [endpoint.pk, endpoint.disabled_reason])]
    assert EndpointHealth.objects.get(endpoint=endpoint).warnings_sent == 0  # disabled, not warned
