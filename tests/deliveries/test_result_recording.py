"""Results are written only while the worker still holds the lease; auth that cannot be sent is refused."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.services.recording import write_results
from deliveries.services.sending import claim, send_one
from ground.conf import webhookhub_settings
from ground.crypto import mask
from subscriptions.validation import clean_auth
from tests.factories import make_endpoint
from webhookhub import publish

pytestmark = pytest.mark.django_db


def test_a_result_that_comes_back_after_the_lease_was_taken_over_is_not_written(tenant, receiver, loopback_receivers):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint
    event = publish(tenant=tenant, type="message.received", data={})
    [delivery], _ = claim(owner="worker-a", now=timezone.now(), lease_seconds=60, capacity=10)
    assert delivery.event_id == event.id
    config = webhookhub_settings()
    sent = send_one(delivery, [endpoint.secrets.get(scheme="v1").secret], config)
    taken_over = timezone.now() + timedelta(minutes=5)  # another worker claimed it after our lease ran out
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=taken_over)

    write_results([sent], [], config)

    assert not Attempt.objects.filter(delivery_id=delivery.pk).exists()
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.status, row.attempt_count, row.lease_until) == (DeliveryStatus.PENDING, 0, taken_over)


def test_a_bearer_token_that_cannot_travel_in_a_header_is_refused():
    with pytest.raises(ValidationError, match="ISO-8859-1"):
        clean_auth("bearer", {"token": "tok€12345678"})


def test_a_receiver_that_echoes_the_request_leaves_no_verification_token_in_the_attempt_log(
    tenant, receiver, loopback_receivers
):
    from tests.support.receiver import Reply

    created = make_endpoint(tenant, receiver.url(), event_types=["message.received"], payload_format="heymarket")
    token = created.verification_token
    receiver.responder = lambda request: Reply(status=400, body=b"bad request: " + request.body)
    publish(tenant=tenant, type="message.received", data={"id": "msg_1", "direction": "inbound", "chat_id": "c"})
    [delivery], _ = claim(owner="worker-a", now=timezone.now(), lease_seconds=60, capacity=10)
    config = webhookhub_settings()

    write_results([send_one(delivery, [created.secret], config)], [], config)

    assert token.encode() in receiver.requests[0].body  # it was sent, and echoed
    attempt = Attempt.objects.get(delivery_id=delivery.pk)
    assert token not in attempt.response_body
    assert mask(token) in attempt.response_body
