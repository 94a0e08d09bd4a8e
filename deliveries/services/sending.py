"""Sending a batch of deliveries: claim, POST concurrently, record attempts and new states."""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliveries import http
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from deliveries.outbound import build_request
from deliveries.retry_policy import decide
from subscriptions.selectors import signing_secrets
from subscriptions.services import disable_endpoint, record_endpoint_health
from webhookhub.conf import webhookhub_settings

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None or _executor._max_workers != size:
            _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhookhub-send")
        return _executor


@dataclass(frozen=True)
class SendReport:
    claimed: int
    succeeded: int
    retrying: int
    failed: int
    cancelled: int


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


def send_deliveries(*, delivery_ids: list[int], lease_token: datetime | None = None) -> SendReport:
    config = webhookhub_settings()
    now = timezone.now()
    ids = claim(delivery_ids, lease_token=lease_token, now=now, lease_seconds=config["SEND_LEASE_SECONDS"])
    if not ids:
        return SendReport(0, 0, 0, 0, 0)
    deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("event", "endpoint"))
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery in deliveries}
    secrets = signing_secrets(list(endpoints.values()), now=now)

    cancelled = [d for d in deliveries if not d.endpoint.enabled]
    to_send = [d for d in deliveries if d.endpoint.enabled]
    timestamp = int(now.timestamp())

    def attempt(delivery: Delivery) -> tuple[Delivery, datetime, dict[str, str], http.HttpResult]:
        endpoint = delivery.endpoint
        request = build_request(
            endpoint=endpoint,
            event_id=delivery.event_id,
            body=delivery.event.body,
            secrets=secrets[endpoint.pk],
            timestamp=timestamp,
            user_agent=config["USER_AGENT"],
        )
        started_at = timezone.now()
        if not secrets[endpoint.pk]:
            return (
                delivery,
                started_at,
                request.masked_headers,
                http.HttpResult(None, error="The endpoint has no signing secret."),
            )
        result = http.post(
            request.url,
            headers=request.headers,
            body=request.body,
            connect_timeout=config["CONNECT_TIMEOUT_SECONDS"],
            total_timeout=endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"],
            max_response_bytes=config["MAX_RESPONSE_BYTES"],
        )
        return delivery, started_at, request.masked_headers, result

    if len(to_send) > 1:
        outcomes = list(_pool(config["SEND_CONCURRENCY"]).map(attempt, to_send))
    else:
        outcomes = [attempt(delivery) for delivery in to_send]

    finished = timezone.now()
    attempts: list[Attempt] = []
    gone: dict[str, str] = {}
    health: dict[str, bool] = {}
    counts = {AttemptOutcome.SUCCESS: 0, AttemptOutcome.RETRY: 0, AttemptOutcome.FAIL: 0}
    for delivery, started_at, masked_headers, result in outcomes:
        number = delivery.attempt_count + 1
        retry_after = next((v for k, v in result.headers.items() if k.lower() == "retry-after"), None)
        decision = decide(
            attempt_number=number,
            status_code=result.status_code,
            retry_after=retry_after,
            now=finished,
            schedule=config["RETRY_SCHEDULE"],
            jitter=config["RETRY_JITTER"],
            retry_after_cap=config["RETRY_AFTER_MAX_SECONDS"],
        )
        counts[decision.outcome] += 1
        error = result.error or ("" if decision.outcome == AttemptOutcome.SUCCESS else f"HTTP {result.status_code}")
        attempts.append(
            Attempt(
                delivery=delivery,
                number=number,
                started_at=started_at,
                duration_ms=result.duration_ms,
                request_headers=masked_headers,
                status_code=result.status_code,
                response_headers=result.headers,
                response_body=result.body[: config["STORED_RESPONSE_BYTES"]].decode("utf-8", errors="replace"),
                error=error,
                outcome=decision.outcome,
            )
        )
        delivery.attempt_count = number
        delivery.last_status_code = result.status_code
        delivery.last_error = error
        delivery.lease_until = None
        if decision.outcome == AttemptOutcome.RETRY:
            delivery.next_attempt_at = decision.next_attempt_at
        else:
            delivery.status = (
                DeliveryStatus.SUCCEEDED if decision.outcome == AttemptOutcome.SUCCESS else DeliveryStatus.FAILED
            )
            delivery.next_attempt_at = None
            delivery.completed_at = finished
        if decision.disable_endpoint_reason:
            gone[delivery.endpoint_id] = decision.disable_endpoint_reason
        succeeded = decision.outcome == AttemptOutcome.SUCCESS
        health[delivery.endpoint_id] = health.get(delivery.endpoint_id, False) or succeeded

    for delivery in cancelled:
        delivery.status = DeliveryStatus.CANCELLED
        delivery.lease_until = None
        delivery.next_attempt_at = None
        delivery.completed_at = finished
        delivery.last_error = f"Endpoint disabled: {delivery.endpoint.disabled_reason or 'by an admin'}"

    with transaction.atomic():
        Attempt.objects.bulk_create(attempts)
        Delivery.objects.bulk_update(
            deliveries,
            [
                "status",
                "attempt_count",
                "next_attempt_at",
                "lease_until",
                "last_status_code",
                "last_error",
                "completed_at",
            ],
        )

    for endpoint_id, succeeded in health.items():
        endpoint = endpoints[endpoint_id]
        if endpoint_id in gone:
            disable_endpoint(endpoint=endpoint, reason=gone[endpoint_id])
        else:
            record_endpoint_health(endpoint=endpoint, succeeded=succeeded, now=finished)

    return SendReport(
        claimed=len(ids),
        succeeded=counts[AttemptOutcome.SUCCESS],
        retrying=counts[AttemptOutcome.RETRY],
        failed=counts[AttemptOutcome.FAIL],
        cancelled=len(cancelled),
    )
