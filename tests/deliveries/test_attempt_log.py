"""The platform's own log: one concise line per attempt, WARNING with what happens next when it failed."""

import logging
import re

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from tests.factories import make_endpoint
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from webhookhub import publish

pytestmark = pytest.mark.django_db(transaction=True)  # the worker records from its own thread


def _lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "webhookhub.attempts"]


def test_a_failed_attempt_is_a_warning_saying_when_the_next_one_goes(tenant, receiver, caplog):
    endpoint = make_endpoint(tenant, receiver.url(), name="orders").endpoint
    receiver.replies = [Reply(status=503)]
    publish(tenant=tenant, type="message.received", data={})

    with caplog.at_level(logging.INFO):
        drain_due()

    delivery = Delivery.objects.get()
    [(level, line)] = _lines(caplog)
    assert level == "WARNING"
    assert re.fullmatch(
        rf"Delivery {delivery.pk} attempt 1 to {endpoint.pk} \(orders\): failed in \d+ ms: HTTP 503; "
        rf"attempt 2 at \d\d:\d\d:\d\d UTC \(in \d+ s\)\.",
        line,
    ), line
    assert receiver.url() not in line


def test_a_success_is_info_and_a_refused_connection_says_so(tenant, receiver, caplog, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULE": []}  # one attempt: the refusal is final
    make_endpoint(tenant, receiver.url())
    closed = make_endpoint(tenant, "http://127.0.0.1:9/hook").endpoint  # discard port: nothing listens
    publish(tenant=tenant, type="message.received", data={})

    with caplog.at_level(logging.INFO):
        drain_due()

    lines = dict((line.split(":")[0].split(" to ")[1], (level, line)) for level, line in _lines(caplog))
    ok_level, ok_line = next(value for key, value in lines.items() if key != closed.pk)
    assert ok_level == "INFO" and re.fullmatch(r"Delivery \d+ attempt 1 to ep_\w+: HTTP 200 in \d+ ms\.", ok_line)
    refused_level, refused_line = lines[closed.pk]
    assert refused_level == "WARNING"
    assert "failed for good" in refused_line and "Connection refused by 127.0.0.1 port 9" in refused_line
    assert Delivery.objects.get(endpoint=closed).status == DeliveryStatus.FAILED
    assert Delivery.objects.get(endpoint=closed).completed_at <= timezone.now()
