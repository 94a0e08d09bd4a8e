"""End to end: a real Celery worker and beat, the real broker and database, a real receiver."""

import json
import signal
import subprocess
import sys
import time

import pytest
from standardwebhooks import Webhook

from accounts.models import Role
from deliveries.adaptive import START_LIMIT
from deliveries.models import Attempt, Delivery, DeliveryStatus
from tests.factories import MembershipFactory, make_endpoint
from tests.support.processes import E2E_WEBHOOKHUB, ROOT
from tests.support.receiver import Receiver, Reply
from tests.support.waiting import delivery_settled, wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_delivery_arrives_signed_and_verifiable(e2e, tenant, receiver):
    created = make_endpoint(tenant, receiver.url(), auth_type="bearer", auth={"token": "tok-abcdefghijkl"})
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data={"text": "hello"})

    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.id
    assert request.headers["authorization"] == "Bearer tok-abcdefghijkl"
    assert request.headers["content-type"] == "application/json"
    assert request.body == event.body.encode()
    assert Webhook(created.secret).verify(request.body, request.headers)["data"] == {"text": "hello"}
    delivery = wait_until(delivery_settled(event.id))
    assert delivery.status == DeliveryStatus.SUCCEEDED
    attempt = Attempt.objects.get(delivery=delivery)
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 200, "success")
    assert "tok-abcdefghijkl" not in json.dumps(attempt.request_headers)


def test_500_then_200_is_retried_with_the_same_id_and_bytes(e2e, tenant, receiver):
    make_endpoint(tenant, receiver.url())
    receiver.replies = [Reply(status=500, body=b"boom")]
    e2e.start_all()

    event = publish(tenant=tenant, type="chat.closed", data={"id": "chat_1"})

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.id
    assert first.body == second.body == event.body.encode()
    delivery = wait_until(delivery_settled(event.id))
    assert delivery.status == DeliveryStatus.SUCCEEDED
    outcomes = list(Attempt.objects.filter(delivery=delivery).values_list("number", "status_code", "outcome"))
    assert outcomes == [(1, 500, "retry"), (2, 200, "success")]


def test_410_disables_the_endpoint_and_stops(e2e, tenant, receiver, tmp_path):
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN).user
    created = make_endpoint(tenant, receiver.url())
    receiver.default = Reply(status=410)
    mail_dir = tmp_path / "mail"
    e2e.env.update(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir))
    e2e.start_all()

    event = publish(tenant=tenant, type="contact.opted_out", data={"id": "ct_1"})

    delivery = wait_until(delivery_settled(event.id))
    assert delivery.status == DeliveryStatus.FAILED
    created.endpoint.refresh_from_db()
    assert created.endpoint.enabled is False
    assert "410" in created.endpoint.disabled_reason
    # Proof that a retry of the 410 would have gone out by now: a marker endpoint on the same receiver
    # answers 500 twice, so its third request is a retry rung by the sweeper at least 2 x 0.8 s after
    # this point, later than any retry of the 410 could be due (1 s +- 20 % after its attempt).
    receiver.replies, receiver.default = [Reply(status=500), Reply(status=500)], Reply(status=200)
    marker = make_endpoint(tenant, receiver.url("/marker")).endpoint
    marker_event = publish(tenant=tenant, type="message.received", data={"marker": 1}, endpoint_ids=[marker.pk])
    receiver.wait_for(4)
    assert wait_until(delivery_settled(marker_event.id)).status == DeliveryStatus.SUCCEEDED
    assert [request.path for request in receiver.requests] == ["/hook", "/marker", "/marker", "/marker"]
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    # The worker e-mailed the tenant's admins from a task, not from the sending threads.
    [mail] = wait_until(lambda: list(mail_dir.glob("*.log")), timeout=30)
    text = mail.read_text()
    assert f"To: {admin.email}" in text and created.endpoint.disabled_reason in text


def test_429_retry_after_is_honoured(e2e, tenant, receiver):
    make_endpoint(tenant, receiver.url())
    receiver.replies = [Reply(status=429, headers={"Retry-After": "3"})]
    e2e.start_all()

    event = publish(tenant=tenant, type="message.sent", data={"id": "msg_1"})

    first, second = receiver.wait_for(2, timeout=40)
    # The schedule alone would retry after 1 s (+-20 %); Retry-After asked for 3 s.
    assert second.at - first.at >= 2.9
    assert wait_until(delivery_settled(event.id)).status == DeliveryStatus.SUCCEEDED


def test_redirect_is_not_followed(e2e, tenant, receiver):
    make_endpoint(tenant, receiver.url("/hook"))
    receiver.default = Reply(status=302, headers={"Location": receiver.url("/elsewhere")})
    e2e.start_all()

    event = publish(tenant=tenant, type="message.sent", data={"id": "msg_2"})

    receiver.wait_for(2, timeout=30)  # the first try and one retry
    assert {request.path for request in receiver.requests} == {"/hook"}
    attempts = list(Attempt.objects.filter(delivery__event_id=event.id).values_list("status_code", "outcome"))
    assert attempts[0] == (302, "retry")


def test_a_fresh_worker_is_woken_by_a_publish_without_any_sweep(e2e, tenant, receiver):
    """The first publish reaches a worker that has not worked yet: by NOTIFY (PostgreSQL), which every
    pool process listens for from its start, or by the broker's doorbell. No sweep comes in this test."""
    make_endpoint(tenant, receiver.url())
    e2e.env = {**e2e.env, "WEBHOOKHUB_SWEEP_INTERVAL_SECONDS": "3600"}
    e2e.start_all()
    time.sleep(2)  # the pool processes are up (and, with NOTIFY, listening)

    event = publish(tenant=tenant, type="message.received", data={"text": "first"})

    [request] = receiver.wait_for(1, timeout=20)
    assert request.headers["webhook-id"] == event.id


def test_sigkill_of_a_worker_mid_send_loses_nothing(e2e, tenant, receiver):
    make_endpoint(tenant, receiver.url(), timeout_s=10)
    receiver.replies = [Reply(status=200, delay=20)]  # the first request hangs until the worker is dead
    e2e.start_all()
    event = publish(tenant=tenant, type="message.received", data={"text": "survive"})

    [first] = receiver.wait_for(1)
    worker = next(p for p in e2e._started if p.name == "worker")
    worker.kill(signal.SIGKILL)
    e2e.start_worker()

    first, second = receiver.wait_for(2, timeout=60)
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == event.id
    assert second.body == first.body == event.body.encode()
    delivery = wait_until(delivery_settled(event.id))
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_a_send_slower_than_the_lease_is_sent_once(e2e, tenant, receiver):
    """The worker renews the lease while the request is open: nobody takes the delivery over meanwhile."""
    lease = E2E_WEBHOOKHUB["SEND_LEASE_SECONDS"]
    make_endpoint(tenant, receiver.url(), timeout_s=30)
    receiver.replies = [Reply(status=200, delay=3 * lease)]
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data={"text": "slow"})

    delivery = wait_until(delivery_settled(event.id), timeout=60)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", "status_code")) == [(1, 200)]


def _publish_in_a_process(e2e, tenant, data: str) -> str:
    """Application code in another process, as a web process would publish; returns the event id."""
    result = subprocess.run(
        [sys.executable, "manage.py", "publish", "--tenant", tenant.slug, "message.received", data],
        cwd=ROOT,
        env=e2e.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_broker_down_at_publish_time_loses_nothing(e2e, tenant, receiver):
    redis = e2e.use_private_broker()
    make_endpoint(tenant, receiver.url())
    e2e.start_all()
    redis.stop()

    # Publishing while the broker is down: the event is stored and publish returns. No doorbell
    # reaches a worker, but the workers' own sweep finds the due delivery and sends it.
    during = _publish_in_a_process(e2e, tenant, '{"text": "while the broker is down"}')
    [request] = receiver.wait_for(1, timeout=30)
    assert request.headers["webhook-id"] == during
    assert wait_until(delivery_settled(during)).status == DeliveryStatus.SUCCEEDED

    redis.start()  # same port: worker and beat reconnect and the doorbell works again

    after = _publish_in_a_process(e2e, tenant, '{"text": "after"}')
    _, request = receiver.wait_for(2, timeout=60)
    assert request.headers["webhook-id"] == after
    assert wait_until(delivery_settled(after)).status == DeliveryStatus.SUCCEEDED


def test_a_stalled_endpoint_does_not_hold_up_a_healthy_one(e2e, tenant, receiver):
    stalled = Receiver().start()
    stalled.default = Reply(status=200, delay=25)  # answers long after everything below is checked
    try:
        make_endpoint(tenant, receiver.url())
        stalled_endpoint = make_endpoint(tenant, stalled.url(), timeout_s=30).endpoint
        e2e.start_all()

        events = [publish(tenant=tenant, type="message.received", data={"n": n}) for n in range(24)]

        # Every healthy delivery arrives while the stalled endpoint still holds its first requests open.
        arrived = receiver.wait_for(len(events), timeout=15)
        assert {request.headers["webhook-id"] for request in arrived} == {event.id for event in events}
        assert all(time.time() < request.at + 25 for request in stalled.requests)
        # The stalled endpoint gets exactly the requests adaptive concurrency starts with open (no answer comes, so
        # the limit never grows towards its max_in_flight of 8; the last may start a moment after the healthy
        # deliveries on a loaded machine); the rest wait, unattempted.
        stalled.wait_for(START_LIMIT, timeout=10)
        time.sleep(0.5)  # room for a third request, which must not come
        assert len(stalled.requests) == START_LIMIT < stalled_endpoint.max_in_flight
        waiting = Delivery.objects.filter(endpoint=stalled_endpoint, status=DeliveryStatus.PENDING, attempt_count=0)
        assert waiting.count() == 24  # those being sent too: no attempt is recorded until they answer
        assert not Attempt.objects.filter(delivery__endpoint=stalled_endpoint).exists()
    finally:
        stalled.stop()
