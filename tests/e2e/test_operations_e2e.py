"""Operations against real processes: /metrics counts what a real worker recorded; /readyz sees a dead database."""

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from tests.factories import make_endpoint
from tests.support import processes
from tests.support.receiver import Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "metrics-token-e2e-0123456789"


def _get(port: int, path: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_served_by_a_web_process_match_the_attempts_a_real_worker_recorded(e2e, tenant, receiver):
    first, second = make_endpoint(tenant, receiver.url("/a")), make_endpoint(tenant, receiver.url("/b"))
    receiver.replies = [Reply(status=500), Reply(status=200), Reply(status=503)]  # then 200s
    e2e.start_worker()
    e2e.start_beat()
    web, port = processes.start_web(processes.process_env(WEBHOOKHUB_METRICS_TOKEN=TOKEN), e2e.log_dir)
    try:
        for n in range(10):
            publish(tenant=tenant, type="message.received", data={"n": n})
        wait_until(
            lambda: not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists(),
            timeout=60,
            message="not all delivered",
        )
        status, body = _get(port, "/metrics", Authorization=f"Bearer {TOKEN}")
        refused, _ = _get(port, "/metrics", Authorization="Bearer not-the-token-0123456789")
    finally:
        web.stop()

    assert status == 200 and refused == 401
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    recorded = {outcome: Attempt.objects.filter(outcome=outcome).count() for outcome in AttemptOutcome.values}
    assert recorded[AttemptOutcome.RETRY] == 2 and recorded[AttemptOutcome.SUCCESS] == 20
    assert samples[("webhookhub_attempts_total", (("outcome", "succeeded"),))] == recorded[AttemptOutcome.SUCCESS]
    assert samples[("webhookhub_attempts_total", (("outcome", "retrying"),))] == recorded[AttemptOutcome.RETRY]
    assert samples[("webhookhub_attempts_total", (("outcome", "failed"),))] == recorded[AttemptOutcome.FAIL] == 0
    assert samples[("webhookhub_attempt_duration_seconds_count", ())] == Attempt.objects.count() == 22
    assert samples[("webhookhub_events_published_total", ())] == 10
    assert samples[("webhookhub_deliveries_created_total", ())] == 20
    assert samples[("webhookhub_deliveries_pending", (("state", "due"),))] == 0
    assert samples[("webhookhub_endpoints", (("state", "enabled"),))] == 2
    assert first.secret not in body.decode() and second.secret not in body.decode()


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(e2e):
    dead = "postgres://postgres@127.0.0.1:1/webhookhub"  # nothing listens on port 1
    web, port = processes.start_web(processes.process_env(DATABASE_URL=dead), e2e.log_dir)
    try:
        status, body = _get(port, "/readyz")
        alive, _ = _get(port, "/healthz")
    finally:
        web.stop()

    assert (status, json.loads(body)) == (503, {"database": "unavailable", "broker": "ok"})
    assert b"127.0.0.1" not in body and b"postgres" not in body
    assert alive == 200  # liveness needs no database


def test_readyz_is_503_naming_the_broker_when_it_cannot_be_reached(e2e):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    web, port = processes.start_web(processes.process_env(CELERY_BROKER_URL=dead), e2e.log_dir)
    try:
        status, body = _get(port, "/readyz")
    finally:
        web.stop()

    assert (status, json.loads(body)) == (503, {"database": "ok", "broker": "unavailable"})
    assert b"127.0.0.1" not in body  # no address or credential in the answer
