"""Sending deliveries, step by step: claim, POST, record the attempts and the new delivery states.

``deliveries.services.pipeline`` runs these steps inside a worker process (the only
caller outside unit tests of a single step).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deliveries import http
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from deliveries.outbound import build_request
from deliveries.retry_policy import Decision, decide
from deliveries.scheduling import Signal, SignalAt, signal_of
from deliveries.services.rollups import record_stats
from deliveries.services.scheduling import Claimed, claim_due, record_signals, signals_of
from deliveries.services.totals import count_attempts
from subscriptions.models import Endpoint
from subscriptions.selectors import signing_secrets
from subscriptions.services import disable_endpoint
from webhookhub import raw_insert

_ATTEMPT_COLUMNS = [field.attname for field in Attempt._meta.concrete_fields if not field.primary_key]
logger = logging.getLogger(__name__)
attempt_logger = logging.getLogger("webhookhub.attempts")  # one line per recorded attempt, at INFO

STATE_FIELDS = (
    "status",
    "attempt_count",
    "next_attempt_at",
    "lease_until",
    "last_status_code",
    "last_error",
    "completed_at",
)


@dataclass(frozen=True)
class SendResult:
    """The outcome of one try. ``request_made`` is False when no request was made (e.g. no signing secret)."""

    delivery: Delivery
    started_at: datetime
    masked_headers: dict[str, str]
    result: http.HttpResult
    request_made: bool = True


@dataclass(frozen=True)
class Batch:
    """Claimed deliveries, split into those to send and those to cancel, with their secrets."""

    to_send: list[Delivery]
    cancelled: list[Delivery]
    secrets: dict[str, list[str]]


def claim(
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    capacity: int,
    held: dict[str, int] | None = None,
    skip: set[str] | None = None,
) -> tuple[list[Delivery], Claimed]:
    """Lease due deliveries fairly across the endpoints this worker may schedule, loaded for sending."""
    claimed = claim_due(owner=owner, now=now, lease_seconds=lease_seconds, capacity=capacity, held=held, skip=skip)
    endpoints = {endpoint_claim.endpoint.pk: endpoint_claim.endpoint for endpoint_claim in claimed.endpoints}
    deliveries = _load(claimed.delivery_ids, endpoints) if claimed.delivery_ids else []
    return deliveries, claimed


def renew_leases(deliveries: Sequence[Delivery], *, now: datetime, lease_seconds: float) -> int:
    """Extend the leases still held on these deliveries (a heartbeat while they are being sent).

    Only a lease that is still the one this process holds is extended (``claimed_lease``
    moves with it); one that ran out and was taken by another worker stays theirs.
    Returns how many were renewed.
    """
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(Delivery._meta.db_table)
    until = now + timedelta(seconds=lease_seconds)
    by_lease: dict[Any, dict[int, Delivery]] = {}
    for delivery in deliveries:
        by_lease.setdefault(delivery.claimed_lease, {})[delivery.pk] = delivery
    renewed = 0
    for lease, held in by_lease.items():
        ids = list(held)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = (
                f"UPDATE {table} SET lease_until = %s "  # noqa: S608 - identifiers only
                f"WHERE id IN ({', '.join(['%s'] * len(chunk))}) AND lease_until = %s RETURNING id"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [adapt(until), *chunk, adapt(lease)])
                for (delivery_id,) in cursor.fetchall():
                    held[delivery_id].claimed_lease = until
                    renewed += 1
    return renewed


def release_leases(deliveries: Sequence[Delivery]) -> None:
    """Give back leased deliveries that were not sent (their endpoint paused or its circuit opened):
    they wait in the database again, with no attempt recorded."""
    by_lease: dict[Any, list[int]] = {}
    for delivery in deliveries:
        by_lease.setdefault(delivery.claimed_lease, []).append(delivery.pk)
    for lease, ids in by_lease.items():
        Delivery.objects.filter(pk__in=ids, lease_until=lease, status=DeliveryStatus.PENDING).update(lease_until=None)


def _load(delivery_ids: list[int], endpoints: dict[str, Endpoint]) -> list[Delivery]:
    """Deliveries with their event body, and the endpoints the claim read (each decrypted once)."""
    deliveries = list(Delivery.objects.filter(pk__in=delivery_ids).select_related("event").defer("event__data"))
    for delivery in deliveries:
        delivery.endpoint = endpoints[delivery.endpoint_id]
        delivery.claimed_lease = delivery.lease_until  # results are written only while this still holds
    return deliveries


def prepare(deliveries: list[Delivery], now: datetime) -> Batch:
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery in deliveries}
    return Batch(
        to_send=[delivery for delivery in deliveries if delivery.endpoint.enabled],
        cancelled=[delivery for delivery in deliveries if not delivery.endpoint.enabled],
        secrets=signing_secrets(list(endpoints.values()), now=now),
    )


def send_one(delivery: Delivery, secrets: list[str], config: dict[str, Any]) -> SendResult:
    """One attempt, signed with this moment's timestamp (a delivery may have waited for its endpoint)."""
    endpoint = delivery.endpoint
    started_at = timezone.now()
    request = build_request(
        endpoint=endpoint,
        event_id=delivery.event_id,
        body=delivery.event.body,
        secrets=secrets,
        timestamp=int(started_at.timestamp()),
        user_agent=config["USER_AGENT"],
    )
    if not secrets:
        result = http.HttpResult(None, error="Not sent: the endpoint has no signing secret.")
        return SendResult(delivery, started_at, request.masked_headers, result, request_made=False)
    result = http.post(
        request.url,
        headers=request.headers,
        body=request.body,
        connect_timeout=config["CONNECT_TIMEOUT_SECONDS"],
        total_timeout=endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"],
        max_response_bytes=config["MAX_RESPONSE_BYTES"],
    )
    return SendResult(delivery, started_at, request.masked_headers, result)


def not_sent(delivery: Delivery, reason: str) -> SendResult:
    """An attempt that made no request, recorded so the delivery moves on along its schedule."""
    result = http.HttpResult(None, error=f"Not sent: {reason}")
    return SendResult(delivery, timezone.now(), {}, result, request_made=False)


def _text(value: str) -> str:
    """Text a database accepts (PostgreSQL rejects NUL in text and jsonb)."""
    return value.replace("\x00", "\ufffd")


def _record(sent: SendResult, now: datetime, config: dict[str, Any]) -> tuple[Attempt, Decision]:
    """Decide what happens next, update the delivery in memory and build its Attempt row."""
    delivery, result = sent.delivery, sent.result
    number = delivery.attempt_count + 1
    retry_after = _retry_after(sent)
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
        request_made=sent.request_made,
    )
    return attempt, decision


def _cancel(delivery: Delivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.CANCELLED
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.completed_at = now
    delivery.last_error = f"Endpoint disabled: {delivery.endpoint.disabled_reason or 'by an admin'}"


def _save_states(deliveries: list[Delivery]) -> None:
    """One UPDATE per distinct new state (a batch of successes is one statement)."""

    def state(delivery: Delivery) -> tuple[Any, ...]:
        return tuple(getattr(delivery, field) for field in STATE_FIELDS)

    for values, group in groupby(sorted(deliveries, key=lambda d: repr(state(d))), key=state):
        Delivery.objects.filter(pk__in=[d.pk for d in group]).update(**dict(zip(STATE_FIELDS, values, strict=True)))


def _disable_gone(recorded: list[tuple[SendResult, Decision]]) -> None:
    """An endpoint that answered 410 Gone asked to stop receiving: disable it with that reason."""
    gone = {
        sent.delivery.endpoint_id: (sent.delivery.endpoint, decision.disable_endpoint_reason)
        for sent, decision in recorded
        if sent.request_made and decision.disable_endpoint_reason
    }
    for endpoint, reason in gone.values():
        disable_endpoint(endpoint=endpoint, reason=reason)


def signal_of_sent(sent: SendResult) -> Signal:
    """What one attempt that made a request says about its endpoint."""
    return signal_of(sent.result.status_code, has_retry_after=_retry_after(sent) is not None)


def _signals(recorded: list[tuple[SendResult, Decision]]) -> dict[str, list[SignalAt]]:
    """What the attempts that made a request say about their endpoints (Retry-After, failure, answer)."""
    return signals_of(
        (sent.delivery.endpoint_id, sent.result.status_code, _retry_after(sent) is not None, decision.next_attempt_at)
        for sent, decision in recorded
        if sent.request_made
    )


def _retry_after(sent: SendResult) -> str | None:
    return next((value for name, value in sent.result.headers.items() if name.lower() == "retry-after"), None)


def _still_owned(deliveries: list[Delivery]) -> set[int]:
    """The deliveries whose lease is still the one they were claimed with, locked until commit.

    A result that comes back after its lease ran out (and another worker may have
    taken the delivery) must not overwrite newer state.
    """
    by_lease: dict[Any, list[int]] = {}
    for delivery in deliveries:
        by_lease.setdefault(getattr(delivery, "claimed_lease", None), []).append(delivery.pk)
    owned: set[int] = set()
    for lease, ids in by_lease.items():
        rows = Delivery.objects.select_for_update().filter(pk__in=ids, lease_until=lease)
        owned.update(rows.values_list("pk", flat=True))
    return owned


def write_results(sent: list[SendResult], cancelled: list[Delivery], config: dict[str, Any]) -> list[str]:
    """Record attempts and new states in one short transaction; returns the outcome of each ``sent``."""
    now = timezone.now()
    recorded = [(item, *_record(item, now, config)) for item in sent]
    for delivery in cancelled:
        _cancel(delivery, now)
    with transaction.atomic():
        owned = _still_owned([item.delivery for item in sent] + cancelled)
        kept = [(item, attempt, decision) for item, attempt, decision in recorded if item.delivery.pk in owned]
        if kept:
            raw_insert.insert([attempt for _, attempt, _ in kept], _ATTEMPT_COLUMNS)
            _disable_gone([(item, decision) for item, _, decision in kept])
            record_stats([attempt for _, attempt, _ in kept], now=now)
            count_attempts((item.delivery.endpoint.tenant_id, attempt) for item, attempt, _ in kept)
        _save_states([item.delivery for item, _, _ in kept] + [d for d in cancelled if d.pk in owned])
        # With the slots these free: a circuit opens before anyone can claim them for a dead endpoint.
        record_signals(_signals([(item, decision) for item, _, decision in kept]), now=now)
    dropped = len(recorded) + len(cancelled) - len(owned)
    if dropped:
        logger.warning("%d result(s) not recorded: their lease ran out before the result came back.", dropped)
    if attempt_logger.isEnabledFor(logging.WARNING):
        for item, attempt, decision in kept:
            _log_attempt(item.delivery, attempt, decision)
    return [decision.outcome for _, _, decision in recorded]


def _log_attempt(delivery: Delivery, attempt: Attempt, decision: Decision) -> None:
    """One line per attempt: INFO when it succeeded, WARNING (with what happens next) when not.

    Ids, the endpoint's name, status or error, duration and outcome; never a URL, header, body or secret.
    """
    endpoint = f"{delivery.endpoint_id} ({delivery.endpoint.name})" if delivery.endpoint.name else delivery.endpoint_id
    answer = attempt.error.rstrip(".")
    if attempt.status_code:
        answer = f"HTTP {attempt.status_code}"
        answer += f" ({attempt.error.rstrip('.')})" if attempt.error and attempt.error != answer else ""
    if decision.outcome == AttemptOutcome.SUCCESS:
        level, what = logging.INFO, f"{answer} in {attempt.duration_ms} ms."
    elif decision.outcome == AttemptOutcome.RETRY and decision.next_attempt_at is not None:
        wait = max(0, round((decision.next_attempt_at - timezone.now()).total_seconds()))
        level = logging.WARNING
        what = (
            f"failed in {attempt.duration_ms} ms: {answer}; attempt {attempt.number + 1} at "
            f"{decision.next_attempt_at:%H:%M:%S} UTC (in {wait} s)."
        )
    else:
        level, what = logging.WARNING, f"failed for good in {attempt.duration_ms} ms: {answer}."
    attempt_logger.log(
        level,
        "Delivery %s attempt %d to %s: %s",
        delivery.pk,
        attempt.number,
        endpoint,
        what,
        extra={
            "event_id": delivery.event_id,
            "delivery_id": delivery.pk,
            "endpoint_id": delivery.endpoint_id,
            "tenant_id": delivery.event.tenant_id,
            "attempt": attempt.number,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms,
            "outcome": str(decision.outcome),
            "error": attempt.error,
        },
    )
