import base64
import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.models import Role
from deliveries.models import AttemptOutcome, Delivery, DeliveryStatus
from deliveries.services.sending import claim
from deliveries.signing import sign
from ground.conf import setting
from ground.task_names import NOTIFY_DISABLED_TASK
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import disable_endpoint, rotate_secret
from subscriptions.tasks import notify_disabled
from tests.factories import MembershipFactory, failing_for, make_endpoint
from tests.support.broker import captured_queue
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from webhookhub import publish

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the worker records from its own connection
    pytest.mark.usefixtures("loopback_receivers"),
]


def _publish_to(endpoint: Endpoint, data: dict | None = None) -> Delivery:
    event = publish(tenant=endpoint.tenant, type="message.received", data=data or {"text": "hi"})
    return Delivery.objects.select_related("event").get(event=event, endpoint=endpoint)


def _only_attempt(delivery: Delivery):
    [attempt] = delivery.attempts.all()
    return attempt


def test_success_records_the_attempt_and_finishes_the_delivery(tenant, receiver):
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)

    assert drain_due() == 1

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempt_count, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.completed_at is not None
    assert delivery.lease_until is None and delivery.next_attempt_at is None
    attempt = _only_attempt(delivery)
    assert (attempt.number, attempt.status_code, attempt.outcome, attempt.response_body) == (
        1,
        200,
        AttemptOutcome.SUCCESS,
        "ok",
    )


def test_a_batch_sends_every_delivery_each_signed_with_its_endpoint_secret(tenant, receiver):
    first = make_endpoint(tenant, receiver.url("/first"))
    second = make_endpoint(tenant, receiver.url("/second"))
    event = publish(tenant=tenant, type="message.received", data={"text": "hi"})

    assert drain_due() == 2

    assert set(Delivery.objects.filter(event=event).values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    by_path = {request.path: request for request in receiver.requests}
    assert sorted(by_path) == ["/first", "/second"]
    Webhook(first.secret).verify(by_path["/first"].body, by_path["/first"].headers)
    Webhook(second.secret).verify(by_path["/second"].body, by_path["/second"].headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(first.secret).verify(by_path["/second"].body, by_path["/second"].headers)


def test_request_wire_format(tenant, receiver):
    created = make_endpoint(tenant, receiver.url("/hooks/in?src=wh"))
    delivery = _publish_to(created.endpoint)
    before = int(time.time())

    drain_due()

    after = int(time.time())
    [request] = receiver.requests
    event = delivery.event
    assert request.path == "/hooks/in?src=wh"
    assert request.body == event.body.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "webhookhub/0.1"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["webhook-id"] == event.pk
    assert before <= int(request.headers["webhook-timestamp"]) <= after
    assert request.headers["webhook-signature"] == sign(
        secret=created.secret, msg_id=event.pk, timestamp=int(request.headers["webhook-timestamp"]), body=request.body
    )
    assert Webhook(created.secret).verify(request.body, request.headers) == json.loads(event.body)


@pytest.mark.parametrize(
    ("auth_type", "auth", "header", "value", "secret"),
    [
        ("bearer", {"token": "tok-7f3a9c1e5b"}, "authorization", "Bearer tok-7f3a9c1e5b", "tok-7f3a9c1e5b"),
        (
            "api_key",
            {"header": "X-Api-Key", "value": "key-91b2c3d4e5"},
            "x-api-key",
            "key-91b2c3d4e5",
            "key-91b2c3d4e5",
        ),
        (
            "basic",
            {"username": "hook-user", "password": "pw-5e6f7a8b9c"},
            "authorization",
            "Basic " + base64.b64encode(b"hook-user:pw-5e6f7a8b9c").decode(),
            "pw-5e6f7a8b9c",
        ),
    ],
)
def test_auth_header_on_the_wire_and_masked_in_the_log(tenant, receiver, auth_type, auth, header, value, secret):
    endpoint = make_endpoint(tenant, receiver.url(), auth_type=auth_type, auth=auth).endpoint
    delivery = _publish_to(endpoint)

    drain_due()

    [request] = receiver.requests
    assert request.headers[header] == value
    logged = json.dumps(_only_attempt(delivery).request_headers)
    assert secret not in logged
    assert value not in logged


def test_custom_headers_arrive_and_are_masked_in_the_log(tenant, receiver):
    headers = {"X-Tenant-Token": "custom-secret-value-123", "X-Env": "prod"}
    delivery = _publish_to(make_endpoint(tenant, receiver.url(), custom_headers=headers).endpoint)

    drain_due()

    [request] = receiver.requests
    assert request.headers["x-tenant-token"] == "custom-secret-value-123"
    assert request.headers["x-env"] == "prod"
    logged = _only_attempt(delivery).request_headers
    assert "custom-secret-value-123" not in json.dumps(logged)
    assert logged["X-Tenant-Token"] == "****-123"
    assert logged["webhook-id"] == delivery.event_id


def test_system_headers_win_over_stored_custom_headers(tenant, receiver):
    created = make_endpoint(tenant, receiver.url())
    # A row written around validation (an old row, a raw update) must still not spoof system headers.
    Endpoint.objects.filter(pk=created.endpoint.pk).update(
        custom_headers={"Webhook-Id": "spoofed", "Content-Type": "text/plain", "User-Agent": "evil"}
    )
    delivery = _publish_to(created.endpoint)

    drain_due()

    [request] = receiver.requests
    assert request.headers["webhook-id"] == delivery.event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "webhookhub/0.1"
    Webhook(created.secret).verify(request.body, request.headers)


def test_500_keeps_the_delivery_pending_for_a_retry(tenant, receiver):
    receiver.default = Reply(status=500, body=b"boom")
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)
    before = timezone.now()

    assert drain_due() == 1

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert (delivery.attempt_count, delivery.last_status_code, delivery.last_error) == (1, 500, "HTTP 500")
    assert delivery.lease_until is None
    assert before + timedelta(seconds=4) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=6)
    attempt = _only_attempt(delivery)
    assert (attempt.outcome, attempt.status_code, attempt.response_body) == (AttemptOutcome.RETRY, 500, "boom")


def test_retry_resends_the_same_body_and_webhook_id(tenant, receiver):
    receiver.replies = [Reply(status=500)]
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)
    drain_due()
    delivery.refresh_from_db()

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=True):
        assert drain_due() == 1

    first, second = receiver.requests
    assert second.body == first.body == delivery.event.body.encode()
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == delivery.event_id
    assert list(delivery.attempts.values_list("number", "outcome")) == [
        (1, AttemptOutcome.RETRY),
        (2, AttemptOutcome.SUCCESS),
    ]


def test_410_fails_the_delivery_and_disables_the_endpoint(tenant, receiver):
    receiver.default = Reply(status=410)
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    delivery = _publish_to(endpoint)

    drain_due()

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.next_attempt_at is None and delivery.completed_at is not None
    assert _only_attempt(delivery).outcome == AttemptOutcome.FAIL
    assert endpoint.enabled is False
    assert "410" in endpoint.disabled_reason
    assert endpoint.disabled_at is not None


def test_429_retry_after_sets_the_next_attempt(tenant, receiver):
    receiver.default = Reply(status=429, headers={"Retry-After": "120"})
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)
    before = timezone.now()

    drain_due()

    after = timezone.now()
    delivery.refresh_from_db()
    assert before + timedelta(seconds=120) <= delivery.next_attempt_at <= after + timedelta(seconds=120)


def test_redirect_is_not_followed(tenant, receiver):
    receiver.default = Reply(status=302, headers={"Location": receiver.url("/elsewhere")})
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)

    drain_due()

    assert [request.path for request in receiver.requests] == ["/hook"]
    attempt = _only_attempt(delivery)
    assert (attempt.status_code, attempt.outcome) == (302, AttemptOutcome.RETRY)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_stored_response_body_is_truncated(tenant, receiver, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "STORED_RESPONSE_BYTES": 16}
    receiver.default = Reply(status=200, body=b"a" * 16 + b"b" * 1000)
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)

    drain_due()

    assert _only_attempt(delivery).response_body == "a" * 16


def test_response_body_with_a_nul_byte_is_recorded(tenant, receiver):
    receiver.default = Reply(status=200, body=b"ok\x00binary")
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)

    drain_due()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_429_with_a_non_ascii_digit_retry_after_still_records_the_attempt(tenant, receiver):
    receiver.default = Reply(status=429, headers={"Retry-After": "\u00b2"})
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)

    drain_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (DeliveryStatus.PENDING, 1)


def test_a_claimed_delivery_cannot_be_claimed_again(tenant, receiver):
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)
    now = timezone.now()
    claimed, _ = claim(owner="worker-a", now=now, lease_seconds=120, capacity=10)  # another worker holds it
    assert [d.pk for d in claimed] == [delivery.pk]

    assert drain_due() == 0  # a second doorbell finds nothing to claim

    assert receiver.requests == []


def test_a_duplicate_message_after_success_sends_nothing(tenant, receiver):
    delivery = _publish_to(make_endpoint(tenant, receiver.url()).endpoint)
    drain_due()

    assert drain_due() == 0

    assert len(receiver.requests) == 1
    assert delivery.attempts.count() == 1


def test_pending_delivery_of_a_disabled_endpoint_is_cancelled_not_sent(tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    delivery = _publish_to(endpoint)
    disable_endpoint(endpoint=endpoint, reason="Paused by an admin", notify=False)

    assert drain_due() == 1
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED
    assert "Paused by an admin" in delivery.last_error
    assert delivery.attempts.count() == 0


def test_after_rotation_both_secrets_sign_new_one_first(tenant, receiver):
    created = make_endpoint(tenant, receiver.url())
    new_secret = rotate_secret(endpoint=created.endpoint)
    delivery = _publish_to(created.endpoint)

    drain_due()

    [request] = receiver.requests
    timestamp = int(request.headers["webhook-timestamp"])
    primary, previous = request.headers["webhook-signature"].split(" ")
    assert primary == sign(secret=new_secret, msg_id=delivery.event_id, timestamp=timestamp, body=request.body)
    assert previous == sign(secret=created.secret, msg_id=delivery.event_id, timestamp=timestamp, body=request.body)
    Webhook(new_secret).verify(request.body, request.headers)
    Webhook(created.secret).verify(request.body, request.headers)


def test_after_the_grace_period_only_the_new_secret_signs(tenant, receiver):
    created = make_endpoint(tenant, receiver.url())
    new_secret = rotate_secret(endpoint=created.endpoint)
    _publish_to(created.endpoint)
    later = timezone.now() + timedelta(seconds=setting("SECRET_ROTATION_GRACE_SECONDS") + 60)

    with time_machine.travel(later, tick=True):
        assert drain_due() == 1
        [request] = receiver.requests
        assert " " not in request.headers["webhook-signature"]
        Webhook(new_secret).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(created.secret).verify(request.body, request.headers)


def _failing_endpoint(tenant, receiver, duration: timedelta) -> Endpoint:
    receiver.default = Reply(status=500)
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    failing_for(endpoint, duration)
    return endpoint


def test_endpoint_failing_past_the_period_is_disabled_and_admins_emailed_from_a_task(tenant, receiver, mailoutbox):
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN).user
    MembershipFactory(tenant=tenant, role=Role.USER)
    period = timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS"))
    endpoint = _failing_endpoint(tenant, receiver, period + timedelta(hours=1))
    _publish_to(endpoint)

    with captured_queue() as queue:
        drain_due()
        queued = [message for message in queue.messages() if message[0] == NOTIFY_DISABLED_TASK]

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_reason.startswith("No successful delivery since")
    assert mailoutbox == []  # the sender sends no mail itself
    assert queued == [(NOTIFY_DISABLED_TASK, [endpoint.pk, endpoint.disabled_reason])]

    assert notify_disabled(*queued[0][1]) == 1  # what the worker runs for that message

    [mail] = mailoutbox
    assert mail.to == [admin.email]
    assert endpoint.url in mail.body
    assert endpoint.disabled_reason in mail.body


def test_endpoint_failing_for_less_than_the_period_stays_enabled(tenant, receiver, mailoutbox):
    MembershipFactory(tenant=tenant, role=Role.ADMIN)
    period = timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS"))
    endpoint = _failing_endpoint(tenant, receiver, period - timedelta(hours=1))
    failing_since = EndpointHealth.objects.get(endpoint=endpoint).failing_since
    _publish_to(endpoint)

    with captured_queue() as queue:
        drain_due()
        queued = [message for message in queue.messages() if message[0] == NOTIFY_DISABLED_TASK]

    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since == failing_since
    assert queued == []
    assert mailoutbox == []


def test_the_notice_task_of_a_deleted_endpoint_sends_nothing(mailoutbox):
    assert notify_disabled("ep_gone", "410 Gone") == 0
    assert mailoutbox == []


def test_first_failure_starts_the_failing_streak(tenant, receiver):
    receiver.default = Reply(status=503)
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    before = timezone.now()

    _publish_to(endpoint)

    drain_due()

    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert before <= health.failing_since <= timezone.now()
    assert (health.failed_in_a_row, health.last_status_code) == (1, 503)


def test_success_clears_the_failing_streak(tenant, receiver):
    endpoint = _failing_endpoint(tenant, receiver, timedelta(days=1))
    receiver.default = Reply(status=200)

    _publish_to(endpoint)

    drain_due()

    endpoint.refresh_from_db()
    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert (health.failing_since, health.failed_in_a_row, health.last_status_code) == (None, 0, 200)
    assert endpoint.enabled is True
