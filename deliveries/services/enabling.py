"""Enabling a disabled endpoint only once it answers: one ``webhook.test`` event, sent now, must get a 2xx.

A disabled endpoint is usually one that failed for days (auto-disable, a 410) or that an admin switched off.
Enabling it while it is still broken would send its backlog into the same wall again and burn the retries of
every delivery replayed to it. So ``enable_after_test`` first sends it the catalog's ``webhook.test`` example,
synchronously (the caller is a web request: the endpoint's own timeout bounds the wait), through exactly the
worker's path: the event and its delivery are published (``actions.send_test_event``: body, payload shape,
ordering), the request is built, signed and sent by ``sending.send_one`` (auth header, custom headers,
address policy, no redirects, response cap) and recorded by ``recording.write_results`` (the attempt log,
the dashboard's numbers, /metrics, the endpoint's health). The test is final: one attempt, no retry.

Only a 2xx enables, in the transaction that records the test: the failing clock restarts
(``enable_endpoint``), the circuit closes, a pause ends and the adaptive concurrency is forgotten, so the
backlog replayed afterwards starts at the adaptive start value and ramps up, instead of going all at once.
Anything else leaves the endpoint as it was (still disabled, with its reason); the caller shows the test's
status and error. ``force=True`` enables without a test.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, EndpointSchedule
from deliveries.services.actions import send_test_event
from deliveries.services.recording import write_results
from deliveries.services.sending import send_one
from events.exceptions import PublishError
from ground.conf import webhookhub_settings
from subscriptions.models import Endpoint
from subscriptions.selectors import signing_secrets
from subscriptions.services import enable_endpoint

# The test delivery is leased to the enabling request from the moment it is written: no worker claims it (and
# cancels it, the endpoint being disabled) while the request sends it. Beyond the request's own timeouts, this
# much spare time; if the web process dies mid-test the lease runs out and a worker cancels the delivery.
_LEASE_SPARE_SECONDS = 30.0

# What the adaptive scheduler starts from again: its state forgotten, no circuit, no pause.
_FRESH_SCHEDULE: dict[str, Any] = {
    "down_in_a_row": 0,
    "circuit_opened_at": None,
    "next_probe_at": None,
    "paused_until": None,
    "pause_reason": "",
    "concurrency_limit": None,
    "concurrency_limited_by": "",
    "concurrency_limited_at": None,
}


@dataclass(frozen=True)
class EnableResult:
    """What an enable did. ``tested``: a test event was made for it; ``status_code`` (None: no answer) and
    ``error`` are its attempt's, as the attempt log holds them (never a secret); ``delivery_id``: the test's
    delivery in the log (None when no test event could be made)."""

    enabled: bool
    tested: bool = False
    status_code: int | None = None
    error: str = ""
    delivery_id: int | None = None

    @property
    def answer(self) -> str:
        """The test's answer in a few words: "HTTP 500", "HTTP 503 (...)", or the error when none came."""
        if self.status_code is None:
            return self.error or "no answer"
        said = f"HTTP {self.status_code}"
        return f"{said} ({self.error.rstrip('.')})" if self.error and self.error != said else said


def enable_after_test(endpoint: Endpoint, *, force: bool = False) -> EnableResult:
    """Enable ``endpoint`` if it answers a test event with a 2xx (or at once with ``force``); see the module.

    An endpoint already enabled is left as it is (no test). ``endpoint`` is updated in memory when enabled.
    """
    if endpoint.enabled:
        return EnableResult(enabled=True)
    if force:
        with transaction.atomic():
            _enable(endpoint)
        return EnableResult(enabled=True)
    config = webhookhub_settings()
    try:
        delivery = _test_delivery(endpoint, config)
    except PublishError as exc:
        return EnableResult(enabled=False, error=f"No test event could be sent: {exc}")
    if delivery.status != DeliveryStatus.PENDING:  # the endpoint's payload shape gave no body for it
        return EnableResult(enabled=False, tested=True, error=delivery.last_error, delivery_id=delivery.pk)
    secrets = signing_secrets([delivery.endpoint], now=timezone.now())[delivery.endpoint_id]
    sent = send_one(delivery, secrets, config)  # no transaction is open across the request
    with transaction.atomic():
        (outcome,) = write_results([sent], [], config)
        attempt = Attempt.objects.filter(delivery_id=delivery.pk).order_by("-number").first()
        succeeded = attempt is not None and outcome == attempt.outcome == AttemptOutcome.SUCCESS
        if succeeded:
            _enable(endpoint)
    return EnableResult(
        enabled=succeeded,
        tested=True,
        status_code=attempt.status_code if attempt else sent.result.status_code,
        error=attempt.error if attempt else "The test's result was not recorded in time; try again.",
        delivery_id=delivery.pk,
    )


def _test_delivery(endpoint: Endpoint, config: dict[str, Any]) -> Delivery:
    """The test event and its delivery to ``endpoint``, leased to this request when they commit; loaded as a
    claim loads a delivery for sending (its event, payload and endpoint)."""
    timeout = endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"]
    lease = timezone.now() + timedelta(seconds=config["CONNECT_TIMEOUT_SECONDS"] + timeout + _LEASE_SPARE_SECONDS)
    with transaction.atomic():
        made = send_test_event(endpoint=endpoint)
        Delivery.objects.filter(pk=made.pk, status=DeliveryStatus.PENDING).update(lease_until=lease)
    delivery = Delivery.objects.select_related("event", "payload", "endpoint").get(pk=made.pk)
    delivery.claimed_lease = lease  # the recorder writes the result only while this lease holds
    # One attempt, final: the recorder decides on this (unsaved) copy's schedule, which has no retry.
    delivery.endpoint.retry_schedule = []
    return delivery


def _enable(endpoint: Endpoint) -> None:
    """Enable (the failing clock restarts) and give the scheduler a fresh start: no circuit, no pause, the
    adaptive concurrency from its start value."""
    enable_endpoint(endpoint=endpoint)
    EndpointSchedule.objects.filter(endpoint_id=endpoint.pk).update(**_FRESH_SCHEDULE)
