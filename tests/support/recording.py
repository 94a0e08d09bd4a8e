"""Attempts recorded the way a worker records them, without a network: for tests of what the numbers show."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from deliveries.http import HttpResult
from deliveries.models import Delivery, DeliveryStatus
from deliveries.outbound import build_request
from deliveries.services.recording import write_results
from deliveries.services.sending import SendResult
from ground.conf import webhookhub_settings
from subscriptions.selectors import signing_secrets


def record(
    deliveries: Iterable[Delivery],
    *,
    status: int | None = 200,
    duration_ms: int = 20,
    at: datetime | None = None,
    error: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    request_made: bool = True,
    final: bool = False,
) -> None:
    """One attempt of each (pending) delivery, recorded as a worker records it: claimed, then ``write_results``.

    ``at`` is when the attempt started (its rollup bucket); ``final`` makes a failed answer the
    last try (failed for good) instead of a retry; ``request_made=False`` is an attempt that made no request.
    """
    now = timezone.now()
    ids = [delivery.pk for delivery in deliveries]
    lease = now + timedelta(seconds=60)
    leased = Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING).update(
        next_attempt_at=now, lease_until=lease
    )
    assert leased == len(ids), "only pending deliveries can be attempted"
    claimed = list(Delivery.objects.filter(pk__in=ids).select_related("event", "endpoint"))
    for delivery in claimed:
        delivery.claimed_lease = lease  # as a worker's claim leaves it
    config = webhookhub_settings()
    if final:
        config = {**config, "RETRY_SCHEDULE": []}
    secrets = signing_secrets([delivery.endpoint for delivery in claimed], now=now)
    sent = []
    for delivery in claimed:
        request = build_request(
            endpoint=delivery.endpoint,
            event_id=delivery.event_id,
            body=delivery.event.body,
            secrets=secrets[delivery.endpoint_id],
            timestamp=int(now.timestamp()),
            user_agent=config["USER_AGENT"],
        )
        result = HttpResult(status, headers=headers or {}, body=body, error=error, duration_ms=duration_ms)
        masked = request.masked_headers if request_made else {}
        sent.append(SendResult(delivery, at or now, masked, result, request_made=request_made))
    write_results(sent, [], config)
