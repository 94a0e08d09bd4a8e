"""LOG_FORMAT=json: a real worker logs each attempt once, as JSON with its ids, and never a secret."""

import json

import pytest

from deliveries.models import Delivery, DeliveryStatus
from tests.factories import make_endpoint
from tests.support.receiver import Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "tok-LOGSECRET-9f8e7d"
HEADER_VALUE = "hdr-LOGSECRET-1a2b3c"


def test_each_attempt_is_one_json_line_with_its_ids_and_no_secret(e2e, tenant, receiver):
    created = make_endpoint(
        tenant, receiver.url(), auth_type="bearer", auth={"token": TOKEN}, custom_headers={"X-Env": HEADER_VALUE}
    )
    receiver.replies = [Reply(status=500, body=b"boom")]  # a failed attempt, then a success
    e2e.env.update(LOG_FORMAT="json", LOG_LEVEL="INFO")
    worker = e2e.start_worker()
    e2e.start_beat()

    event = publish(tenant=tenant, type="message.received", data={"text": "hi"})
    delivery = Delivery.objects.get(event=event)
    wait_until(
        lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED,
        timeout=60,
        message="not delivered",
    )
    wait_until(lambda: worker.log().count('"webhookhub.attempts"') >= 2, timeout=10, message="no attempt lines")
    log = worker.log()

    logged = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    attempts = [entry for entry in logged if entry["logger"] == "webhookhub.attempts"]
    assert [(entry["attempt"], entry["status_code"], entry["outcome"]) for entry in attempts] == [
        (1, 500, "retry"),
        (2, 200, "success"),
    ]
    for entry in attempts:
        assert entry["event_id"] == event.pk and entry["delivery_id"] == delivery.pk
        assert (entry["endpoint_id"], entry["tenant_id"]) == (created.endpoint.pk, tenant.pk)
        assert entry["duration_ms"] >= 0
    assert [entry["level"] for entry in attempts] == ["WARNING", "INFO"]  # the failure stands out
    signatures = [request.headers["webhook-signature"] for request in receiver.requests]
    for secret in [TOKEN, HEADER_VALUE, created.secret, *signatures]:
        assert secret not in log
