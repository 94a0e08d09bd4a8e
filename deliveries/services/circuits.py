"""Each endpoint's scheduling health, moved by what its attempts said: ``Retry-After`` pauses the endpoint,
requests in a row that found it down (refused, timed out, 5xx) open its circuit, the first answer closes it.

Written in the recording transaction (``deliveries.services.recording``); read by claims.
"""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import (
    Health,
    Signal,
    SignalAt,
    after_attempts,
    signal_of,
)
from deliveries.services import wakeups

logger = logging.getLogger(__name__)


_HEALTH_FIELDS = ["down_in_a_row", "circuit_opened_at", "next_probe_at", "paused_until", "pause_reason"]


def record_signals(signals: dict[str, list[tuple[Signal, datetime | None]]], *, now: datetime) -> None:
    """Move each endpoint's scheduling health by what its attempts said (in order).

    A batch that changes nothing (the usual: healthy endpoints answering) costs one read.
    """
    if not signals:
        return
    if not _health_changes(EndpointSchedule.objects.filter(endpoint_id__in=list(signals)), signals, now=now):
        return
    EndpointSchedule.objects.bulk_create(
        [EndpointSchedule(endpoint_id=endpoint_id) for endpoint_id in signals], ignore_conflicts=True
    )
    with transaction.atomic():
        rows = EndpointSchedule.objects.select_for_update().filter(endpoint_id__in=list(signals))
        changed = _health_changes(rows, signals, now=now)
        for row, before, after in changed:
            for name in _HEALTH_FIELDS:
                setattr(row, name, getattr(after, name))
            if before.circuit_opened_at is None and after.circuit_opened_at is not None:
                failures = after.down_in_a_row
                logger.warning("Endpoint %s: circuit opened after %d failures in a row.", row.endpoint_id, failures)
        EndpointSchedule.objects.bulk_update([row for row, _, _ in changed], _HEALTH_FIELDS)
        closed = [
            row.endpoint_id
            for row, before, after in changed
            if before.circuit_opened_at and not after.circuit_opened_at
        ]
        if closed:
            # Back up: what waited for a retry during the outage goes now, at the endpoint's limits.
            Delivery.objects.filter(
                endpoint_id__in=closed, status=DeliveryStatus.PENDING, next_attempt_at__gt=now, lease_until__isnull=True
            ).update(next_attempt_at=now)
            if wakeups.notifying():
                wakeups.notify(closed)  # when this commits
            logger.info("Circuit closed for %s; their waiting deliveries go now.", ", ".join(closed))


def _health_changes(
    rows: Iterable[EndpointSchedule], signals: dict[str, list[SignalAt]], *, now: datetime
) -> list[tuple[EndpointSchedule, Health, Health]]:
    """(row, health before, health after) of each endpoint whose health the signals move; endpoints with no
    row yet count as fresh."""
    found = {row.endpoint_id: row for row in rows}
    changes = []
    for endpoint_id, endpoint_signals in signals.items():
        row = found.get(endpoint_id) or EndpointSchedule(endpoint_id=endpoint_id)
        before = Health(**{name: getattr(row, name) for name in _HEALTH_FIELDS})
        after = after_attempts(before, endpoint_signals, now=now)
        if after != before:
            changes.append((row, before, after))
    return changes


def signals_of(outcomes: Iterable[tuple[str, int | None, bool, datetime | None]]) -> dict[str, list[SignalAt]]:
    """(endpoint id, status code, has Retry-After, retry at) per attempt, grouped by endpoint."""
    grouped: dict[str, list[tuple[Signal, datetime | None]]] = {}
    for endpoint_id, status_code, has_retry_after, retry_at in outcomes:
        grouped.setdefault(endpoint_id, []).append((signal_of(status_code, has_retry_after=has_retry_after), retry_at))
    return grouped
