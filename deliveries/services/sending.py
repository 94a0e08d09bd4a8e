"""Sending deliveries, step by step: claim, POST (``deliveries.services.recording`` records the results).

``deliveries.worker`` runs these steps inside a worker process (the only
caller outside unit tests of a single step).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from deliveries import http, oauth2
from deliveries.adaptive import Answer
from deliveries.models import Delivery, DeliveryStatus
from deliveries.outbound import OutboundRequest, build_request
from deliveries.pacing import Signal, signal_of
from deliveries.services.claims import Claimed, claim_due
from ground.db import bound_cursor
from subscriptions.certificates import ClientTls, client_tls_of
from subscriptions.models import AuthType
from subscriptions.payloads import fill_token, signs
from subscriptions.selectors import signing_secrets


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
    limits: dict[str, int] | None = None,
    skip: set[str] | None = None,
    endpoint_ids: list[str] | None = None,
) -> tuple[list[Delivery], Claimed]:
    """Lease due deliveries fairly across the endpoints this worker may schedule (or these), loaded for sending
    (each with its event's body and its endpoint)."""
    claimed = claim_due(
        owner=owner,
        now=now,
        lease_seconds=lease_seconds,
        capacity=capacity,
        held=held,
        limits=limits,
        skip=skip,
        endpoint_ids=endpoint_ids,
    )
    for endpoint_claim in claimed.endpoints:
        for delivery in endpoint_claim.deliveries:
            delivery.endpoint = endpoint_claim.endpoint  # read by the claim, decrypted once
            delivery.claimed_lease = delivery.lease_until  # results are written only while this still holds
    return claimed.deliveries, claimed


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
            with bound_cursor() as cursor:
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


def prepare(deliveries: list[Delivery], now: datetime) -> Batch:
    endpoints = {delivery.endpoint_id: delivery.endpoint for delivery in deliveries}
    return Batch(
        to_send=[delivery for delivery in deliveries if delivery.endpoint.enabled],
        cancelled=[delivery for delivery in deliveries if not delivery.endpoint.enabled],
        secrets=signing_secrets(list(endpoints.values()), now=now),
    )


def send_one(delivery: Delivery, secrets: list[str], config: dict[str, Any]) -> SendResult:
    """One attempt, signed with the timestamp of its request (a delivery may have waited for its endpoint), unless the
    endpoint's receiver checks the verification token in the body instead. An OAuth2 endpoint's request carries
    its current token; a 401 to it is sent once more, within the attempt, with a fresh one."""
    endpoint = delivery.endpoint
    started_at = timezone.now()
    signing = signs(endpoint.verification)
    body = delivery.event.body
    if delivery.payload_id is not None:  # only a payload may hold a Heymarket token slot
        body = fill_token(delivery.sent_body(), endpoint.verification_token)
    timeout = endpoint.timeout_s or config["TOTAL_TIMEOUT_SECONDS"]

    def request_with(access_token: str | None) -> OutboundRequest:
        return build_request(
            endpoint=endpoint,
            event_id=delivery.event_id,
            body=body,
            secrets=secrets if signing else [],
            timestamp=int(time.time()),  # as it goes: after a token fetch, or for the re-send after a 401
            user_agent=config["USER_AGENT"],
            ordering=(delivery.ordering_key, delivery.sequence or 0) if delivery.ordering_key is not None else None,
            access_token=access_token,
        )

    if signing and not secrets:
        result = http.HttpResult(None, error="Not sent: the endpoint has no signing secret.")
        return SendResult(delivery, started_at, request_with(None).masked_headers, result, request_made=False)
    access_token = None
    if endpoint.auth_type == AuthType.OAUTH2:
        try:
            access_token = oauth2.tokens.token(endpoint, timeout=timeout)
        except oauth2.TokenError as exc:
            result = http.HttpResult(None, error=f"Not sent: no OAuth2 token. {exc}")
            return SendResult(delivery, started_at, request_with(None).masked_headers, result, request_made=False)
    request = request_with(access_token)
    tls = client_tls_of(endpoint)
    result = _post(request, tls, timeout, config)
    if result.status_code == 401 and access_token is not None:
        try:
            fresh = oauth2.tokens.refresh(endpoint, rejected=access_token, timeout=timeout)
        except oauth2.TokenError as exc:
            result = replace(result, error=f"{result.error} 401 with the cached token; no fresh one: {exc}".strip())
        else:
            first_ms = result.duration_ms
            request = request_with(fresh)
            result = _post(request, tls, timeout, config)
            result = replace(result, duration_ms=first_ms + result.duration_ms)
            if result.status_code == 401:
                oauth2.tokens.refused_fresh(endpoint)
    return SendResult(delivery, started_at, request.masked_headers, result)


def _post(request: OutboundRequest, tls: ClientTls | None, timeout: float, config: dict[str, Any]) -> http.HttpResult:
    return http.post(
        request.url,
        headers=request.headers,
        body=request.body,
        connect_timeout=config["CONNECT_TIMEOUT_SECONDS"],
        total_timeout=timeout,
        max_response_bytes=config["MAX_RESPONSE_BYTES"],
        tls=tls,
    )


def not_sent(delivery: Delivery, reason: str) -> SendResult:
    """An attempt that made no request, recorded so the delivery moves on along its schedule."""
    result = http.HttpResult(None, error=f"Not sent: {reason}")
    return SendResult(delivery, timezone.now(), {}, result, request_made=False)


def answer_of_sent(sent: SendResult) -> Answer:
    """What one attempt that made a request says to adaptive concurrency."""
    result = sent.result
    return Answer(result.status_code, result.failure, result.duration_ms)


def signal_of_sent(sent: SendResult) -> Signal:
    """What one attempt that made a request says about its endpoint."""
    return signal_of(sent.result.status_code, has_retry_after=retry_after(sent) is not None)


def retry_after(sent: SendResult) -> str | None:
    """The answer's Retry-After header, if any."""
    return next((value for name, value in sent.result.headers.items() if name.lower() == "retry-after"), None)
