"""Sending a batch of deliveries: claim, POST concurrently, record attempts and new states."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliveries import http
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from deliveries.outbound import build_request
from deliveries.retry_policy import Decision, decide
from subscriptions.models import Endpoint
from subscriptions.selectors import signing_secrets
from subscriptions.services import disable_endpoint, record_endpoint_health
from webhookhub.conf import webhookhub_settings

DELIVERY_STATE_FIELDS = [
    "status",
    "attempt_count",
    "next_attempt_at",
    "lease_until",
    "last_status_code",
    "last_error",
    "completed_at",
]

_executors: dict[int, ThreadPoolExecutor] = {}
_executors_lock = Lock()


def _executor(size: int) -> ThreadPoolExecutor:
    """One long-lived thread pool per process (created after the worker forks)."""
    with _executors_lock:
        if size not in _executors:
            _executors[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhookhub-send")
        return _executors[size]


@dataclass(frozen=True)
class SendReport:
    claimed: int
    succeeded: int
    retrying: int
    failed: int
    cancelled: int


@dataclass(frozen=True)
class _Sent:
    delivery: Delivery
    started_at: datetime
    masked_headers: dict[str, str]
    result: http.HttpResult


def claim(delivery_ids: list[int], *, lease_token: datetime | None, now: datetime, lease_seconds: float) -> list[int]:
    """Take ownership of the deliveries that are due and not owned by anyone else.

    A delivery leased to the broker message carrying ``lease_token`` may be taken
    by that message; one leased under another token (a newer hand-off, or a
    worker sending it) is skipped until its lease runs out.
    """
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if lease_token is not None:
        free |= Q(lease_until=lease_token)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(free, pk__in=delivery_ids, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .values_list("pk", flat=True)
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(lease_until=now + timedelta(seconds=lease_seconds))
    return ids


def _send_one(delivery: Delivery, secrets: list[str], timestamp: int, config: dict[str, Any]) -> _Sent:
    endpoint = delivery.endpoint
    request = build_request(
        endpoint=endpoint,
        event_id=delivery.event_id,
        body=delivery.event.body,
        secrets=secrets,
        timestamp=timestamp,
        user_agent=config["USER_AGENT"],
    )
    started_at = timezone.now()
    if not secrets:
        return _Sent(delivery, started_at, request.masked_headers, http.HttpResult(None, error="No signing secret."))
    result = http.post(
        request.url,
        headers=request.headers,
        body=request.body,
        connect_timeout=config["CONNECT_TIMEOUT_SECONDS"],
        total_timeout=endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"],
        max_response_bytes=config["MAX_RESPONSE_BYTES"],
    )
    return _Sent(delivery, started_at, request.masked_headers, result)


def _text(value: str) -> str:
    """Text a database accepts (PostgreSQL rejects NUL in text and jsonb)."""
    return value.replace("\x00", "\ufffd")


def _record(sent: _Sent, now: datetime, config: dict[str, Any]) -> tuple[Attempt, Decision]:
    """Decide what happens next, update the delivery in memory and build its Attempt row."""
    delivery, result = sent.delivery, sent.result
    number = delivery.attempt_count + 1
    retry_after = next((value for name, value in result.headers.items() if name.lower() == "retry-after"), None)
    decision = decide(
        attempt_number=number,
        status_code=result.status_code,
        retry_after=retry_after,
        now=now,
        schedule=config["RETRY_SCHEDULE"],
        jitter=config["RETRY_JITTER"],
        retry_after_cap=config["RETRY_AFTER_MAX_SECONDS"],
    )
    error = _text(result.error) or ("" if decision.outcome == AttemptOutcome.SUCCESS else f"HTTP {result.status_code}")
    delivery.attempt_count = number
    delivery.last_status_code = result.status_code
    delivery.last_error = error
    delivery.lease_until = None
    if decision.outcome == AttemptOutcome.RETRY:
        delivery.next_attempt_at = decision.next_attempt_at
    else:
        succeeded = decision.outcome == AttemptOutcome.SUCCESS
        delivery.status = DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.completed_at = now
    attempt = Attempt(
        delivery=delivery,
        number=number,
        started_at=sent.started_at,
        duration_ms=result.duration_ms,
        request_headers=sent.masked_headers,
        status_code=result.status_code,
        response_headers={_text(name): _text(value) for name, value in result.headers.items()},
        response_body=_text(result.body[: config["STORED_RESPONSE_BYTES"]].decode("utf-8", errors="replace")),
        error=error,
        outcome=decision.outcome,
    )
    return attempt, decision


def _cancel(delivery: Delivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.CANCELLED
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.completed_at = now
    delivery.last_error = f"Endpoint disabled: {delivery.endpoint.disabled_reason or 'by an admin'}"


def _update_endpoints(endpoints: dict[str, Endpoint], decisions: list[tuple[str, Decision]], now: datetime) -> None:
    """410 disables; otherwise one success in the batch counts as healthy, else one more failure."""
    gone: dict[str, str] = {}
    healthy: dict[str, bool] = {}
    for endpoint_id, decision in decisions:
        if decision.disable_endpoint_reason:
            gone[endpoint_id] = decision.disable_endpoint_reason
        healthy[endpoint_id] = healthy.get(endpoint_id, False) or decision.outcome == AttemptOutcome.SUCCESS
    for endpoint_id, succeeded in healthy.items():
        if endpoint_id in gone:
            disable_endpoint(endpoint=endpoints[endpoint_id], reason=gone[endpoint_id])
        else:
            record_endpoint_health(endpoint=endpoints[endpoint_id], succeeded=succeeded, now=now)


def send_deliveries(*, delivery_ids: list[int], lease_token: datetime | None = None) -> SendReport:
    """Send the given deliveries that this call can claim; never holds a transaction during HTTP."""
    config = webhookhub_settings()
    now = timezone.now()
    ids = claim(delivery_ids, lease_token=lease_token, now=now, lease_seconds=config["SEND_LEASE_SECONDS"])
    if not ids:
        return SendReport(0, 0, 0, 0, 0)
    deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("event", "endpoint"))
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery in deliveries}
    secrets = signing_secrets(list(endpoints.values()), now=now)
    to_send = [delivery for delivery in deliveries if delivery.endpoint.enabled]
    cancelled = [delivery for delivery in deliveries if not delivery.endpoint.enabled]

    timestamp = int(now.timestamp())

    def send(delivery: Delivery) -> _Sent:
        return _send_one(delivery, secrets[delivery.endpoint_id], timestamp, config)

    if len(to_send) > 1:
        sent = list(_executor(config["SEND_CONCURRENCY"]).map(send, to_send))
    else:
        sent = [send(delivery) for delivery in to_send]

    finished = timezone.now()
    recorded = [_record(item, finished, config) for item in sent]
    for delivery in cancelled:
        _cancel(delivery, finished)
    with transaction.atomic():
        Attempt.objects.bulk_create([attempt for attempt, _ in recorded])
        Delivery.objects.bulk_update(deliveries, DELIVERY_STATE_FIELDS)
    _update_endpoints(endpoints, [(attempt.delivery.endpoint_id, decision) for attempt, decision in recorded], finished)

    outcomes = [decision.outcome for _, decision in recorded]
    return SendReport(
        claimed=len(ids),
        succeeded=outcomes.count(AttemptOutcome.SUCCESS),
        retrying=outcomes.count(AttemptOutcome.RETRY),
        failed=outcomes.count(AttemptOutcome.FAIL),
        cancelled=len(cancelled),
    )
