"""Each endpoint's scheduling health, moved by what its attempts said: ``Retry-After`` pauses the endpoint,
requests in a row that found it down (refused, timed out, 5xx) open its circuit, the first answer closes it.

Written in the recording transaction (``deliveries.services.recording``); read by claims.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import (
    Health,
    Signal,
    SignalAt,
    after_attempts,
    signal_of,
)
from deliveries.services import wakeups
from ground import rows
from ground.model_fields import concrete_field
from ground.statements import Statement, check, execute_together

logger = logging.getLogger(__name__)


_HEALTH_FIELDS = ["down_in_a_row", "circuit_opened_at", "next_probe_at", "paused_until", "pause_reason"]
_READ_FIELDS = [concrete_field(EndpointSchedule, name) for name in ["endpoint", *_HEALTH_FIELDS]]


def health_statement(endpoint_ids: list[str]) -> Statement | None:
    """The read of these endpoints' scheduling health, for the caller to run with its other statements; its rows
    go to ``record_signals`` as ``current``."""
    if not endpoint_ids:
        return None
    if connection.vendor == "postgresql":
        return _health_sql("= ANY(%s::text[])"), [endpoint_ids]
    return _health_sql(f"IN ({', '.join(['%s'] * len(endpoint_ids))})"), endpoint_ids


@lru_cache(maxsize=32)
def _health_sql(which: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _READ_FIELDS)
    return f"SELECT {columns} FROM {quote(EndpointSchedule._meta.db_table)} WHERE endpoint_id {which}"  # noqa: S608


def health_unmoved_by_success(endpoint_ids: list[str]) -> Statement:
    """A check (``ground.statements.check``, PostgreSQL) that successes would leave these endpoints' scheduling
    health as it is: none has failures in a row, an open circuit or a probe due (what ``after_attempts`` resets on
    an answer)."""
    quote = connection.ops.quote_name
    condition = (
        f"NOT EXISTS (SELECT 1 FROM {quote(EndpointSchedule._meta.db_table)} WHERE endpoint_id = ANY(%s::text[]) "  # noqa: S608
        "AND (down_in_a_row <> 0 OR circuit_opened_at IS NOT NULL OR next_probe_at IS NOT NULL))"
    )
    return check(condition, [endpoint_ids], "an endpoint's scheduling health moves")


def record_signals(
    signals: dict[str, list[tuple[Signal, datetime | None]]],
    *,
    now: datetime,
    current: Sequence[tuple[Any, ...]] | None = None,
) -> None:
    """Move each endpoint's scheduling health by what its attempts said (in order).

    ``current``: ``health_statement``'s rows for these endpoints, read in this transaction (else they are
    read here). A batch that changes nothing (the usual: healthy endpoints answering) writes nothing.
    """
    if not signals:
        return
    if current is None:
        (current,) = execute_together([health_statement(list(signals))])
    read = [rows.instance(EndpointSchedule, _READ_FIELDS, values) for values in current]
    if not _health_changes(read, signals, now=now):
        return
    EndpointSchedule.objects.bulk_create(
        [EndpointSchedule(endpoint_id=endpoint_id) for endpoint_id in signals], ignore_conflicts=True
    )
    with transaction.atomic():
        locked = EndpointSchedule.objects.select_for_update().filter(endpoint_id__in=list(signals))
        changed = _health_changes(locked, signals, now=now)
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
