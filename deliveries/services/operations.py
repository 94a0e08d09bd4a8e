"""What admins do to deliveries: resend one, replay many, send a test event, read an endpoint's stats."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryQuerySet, DeliveryStatus
from deliveries.services import doorbell
from deliveries.services.publishing import publish
from events.catalog import TEST_EVENT_TYPE
from events.models import EventSource, EventType
from subscriptions.models import Endpoint

_AGAIN = {"status": DeliveryStatus.PENDING, "lease_until": None, "completed_at": None}


def resend(delivery: Delivery) -> Delivery:
    """Send this delivery again now, with the same event id and body (one more attempt).

    A delivery a worker is sending right now (pending with a live lease) is left to it.
    """
    now = timezone.now()
    if Delivery.objects.filter(pk=delivery.pk).not_in_flight(now).update(next_attempt_at=now, **_AGAIN):
        transaction.on_commit(doorbell.ring)
    delivery.refresh_from_db()
    return delivery


def cancel_pending(deliveries: DeliveryQuerySet) -> int:
    """Cancel those still pending and not held by a worker right now; returns how many."""
    now = timezone.now()
    return (
        deliveries.pending()
        .not_in_flight(now)
        .update(
            status=DeliveryStatus.CANCELLED, next_attempt_at=None, completed_at=now, last_error="Cancelled by an admin."
        )
    )


def replay(*, endpoint: Endpoint, statuses: list[str], since: datetime, until: datetime, dry_run: bool = False) -> int:
    """Send again the endpoint's deliveries with those statuses created in [since, until); returns how many."""
    chosen = Delivery.objects.filter(
        endpoint=endpoint, status__in=statuses, created_at__gte=since, created_at__lt=until
    )
    if dry_run:
        return chosen.count()
    count = chosen.update(next_attempt_at=timezone.now(), **_AGAIN)
    if count:
        transaction.on_commit(doorbell.ring)
    return count


def send_test_event(*, endpoint: Endpoint, data: dict[str, Any] | None = None) -> Delivery:
    """A ``webhook.test`` event to this endpoint only, through the normal delivery path."""
    if data is None:
        data = EventType.objects.get(name=TEST_EVENT_TYPE).example
    event = publish(
        tenant=endpoint.tenant, type=TEST_EVENT_TYPE, data=data, source=EventSource.TEST, endpoint_ids=[endpoint.pk]
    )
    return Delivery.objects.get(event=event, endpoint=endpoint)


@dataclass(frozen=True)
class EndpointStats:
    window_seconds: int
    attempts: int
    by_outcome: dict[str, int]
    success_rate: float | None
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    pending_deliveries: int
    failed_deliveries: int


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def endpoint_stats(*, endpoint: Endpoint, window: timedelta, sample: int = 10_000) -> EndpointStats:
    """Attempts in the window by outcome, success rate, and latency percentiles of the latest ``sample``."""
    since = timezone.now() - window
    attempts = Attempt.objects.filter(delivery__endpoint=endpoint, started_at__gte=since)
    counts = {outcome: 0 for outcome in AttemptOutcome.values}
    for outcome, count in _grouped(attempts):
        counts[outcome] = count
    total = sum(counts.values())
    durations = sorted(
        attempts.filter(status_code__isnull=False)
        .order_by("-started_at")
        .values_list("duration_ms", flat=True)[:sample]
    )
    deliveries = Delivery.objects.filter(endpoint=endpoint)
    return EndpointStats(
        window_seconds=int(window.total_seconds()),
        attempts=total,
        by_outcome=counts,
        success_rate=round(counts[AttemptOutcome.SUCCESS] / total, 4) if total else None,
        latency_p50_ms=_percentile(durations, 0.50),
        latency_p95_ms=_percentile(durations, 0.95),
        pending_deliveries=deliveries.filter(status=DeliveryStatus.PENDING).count(),
        failed_deliveries=deliveries.filter(status=DeliveryStatus.FAILED, created_at__gte=since).count(),
    )


def _grouped(attempts: QuerySet[Attempt]) -> list[tuple[str, int]]:
    return list(attempts.values("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
