"""Results are written only while the worker still holds the lease; auth that cannot be sent is refused."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from deliveries.models import Attempt, Delivery, DeliveryStatus
from deliveries.services.recording import write_results
from deliveries.services.sending import claim, send_one
from ground.conf import webhookhub_settings
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
    sent = send_one(delivery, [endpoint.secrets.get().secret], config)
    taken_over = timezone.now() + timedelta(minutes=5)  # another worker claimed it after our lease ran out
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=taken_over)

    write_results([sent], [], config)

    assert not Attempt.objects.filter(delivery_id=delivery.pk).exists()
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.status, row.attempt_count, row.lease_until) == (DeliveryStatus.PENDING, 0, taken_over)


def test_a_bearer_token_that_cannot_travel_in_a_header_is_refused():
    with pytest.raises(ValidationError, match="ISO-8859-1"):
        clean_auth("bearer", {"token": "tok€12345678"})
