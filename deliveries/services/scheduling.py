"""Claiming due work fairly across endpoints, within each endpoint's limits, for the whole cluster.

One worker process at a time owns an endpoint: it alone leases the endpoint's deliveries and
starts their requests, so it can hold ``max_in_flight`` and ``rate_limit_per_s`` in its own
memory and they hold across every worker on every host. Ownership lives in the endpoint's
``EndpointSchedule`` row (``owner``, ``owned_until``): it is taken in a claim, renewed by the
owner's heartbeat with its send leases, given back (with the rate limit's next free start)
once everything it leased is recorded, and lapses with the leases if the owner dies.

One claim is one read and, when it finds work, one short transaction:

1. walk the endpoints that have pending deliveries (a skip scan of the pending index: one
   index probe per endpoint, however long its backlog) and keep those with due, unleased work
   that no other live owner schedules;
2. lock the schedule rows of those that are free or already this worker's, ``FOR UPDATE
   SKIP LOCKED``, least recently served first (round robin over endpoints, so over tenants);
3. ask ``deliveries.scheduling.budget`` how many more each may lease (a few per slot of
   ``max_in_flight``, or about a second of its rate; none while paused; one probe while its
   circuit is open) and lease that many of its most overdue deliveries;
4. mark the endpoints served, and this worker their owner.

The recorder feeds each batch's outcomes back (``record_signals``): ``Retry-After`` pauses the
endpoint, consecutive failures open its circuit, the first answer closes it.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import (
    Budget,
    EndpointState,
    Health,
    Signal,
    SignalAt,
    after_attempts,
    budget,
    signal_of,
)
from subscriptions.models import Endpoint

logger = logging.getLogger(__name__)

_PENDING = DeliveryStatus.PENDING.value


@dataclass
class EndpointClaim:
    """What one claim leased for one endpoint, with what its owner needs to pace it."""

    endpoint: Endpoint
    delivery_ids: list[int]
    next_start_at: datetime | None  # the rate limit's next free start, as the last owner left it
    consecutive_failures: int


@dataclass
class Claimed:
    endpoints: list[EndpointClaim] = field(default_factory=list)
    wake_at: datetime | None = None  # when a limit of time (pause, probe) lets more of the due work go

    @property
    def delivery_ids(self) -> list[int]:
        return [pk for claim in self.endpoints for pk in claim.delivery_ids]


def endpoints_with_due_work(now: datetime, *, owner: str) -> list[str]:
    """Endpoints with due, unleased deliveries that no other live owner schedules."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    schedules = connection.ops.quote_name(EndpointSchedule._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    sql = f"""
        WITH RECURSIVE walk(endpoint_id) AS (
            SELECT MIN(endpoint_id) FROM {table} WHERE status = '{_PENDING}'
            UNION ALL
            SELECT (SELECT MIN(d.endpoint_id) FROM {table} d
                    WHERE d.status = '{_PENDING}' AND d.endpoint_id > walk.endpoint_id)
            FROM walk WHERE walk.endpoint_id IS NOT NULL
        )
        SELECT walk.endpoint_id FROM walk
        WHERE walk.endpoint_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM {table} d
            WHERE d.endpoint_id = walk.endpoint_id AND d.status = '{_PENDING}' AND d.next_attempt_at <= %s
              AND (d.lease_until IS NULL OR d.lease_until < %s)
        ) AND NOT EXISTS (
            SELECT 1 FROM {schedules} s
            WHERE s.endpoint_id = walk.endpoint_id AND s.owner <> '' AND s.owner <> %s AND s.owned_until >= %s
        )
    """  # noqa: S608 - identifiers and a constant only
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(now), adapt(now), owner, adapt(now)])
        return [row[0] for row in cursor.fetchall()]


def _lease(wanted: dict[str, int], *, now: datetime, until: datetime) -> dict[str, list[int]]:
    """Lease up to ``wanted[endpoint]`` of each endpoint's most overdue due deliveries; their ids by endpoint."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    due = f"status = '{_PENDING}' AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until < %s)"
    leased: dict[str, list[int]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # every endpoint in one statement
            cursor.execute(
                f"UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608 - identifiers and a constant only
                f"SELECT picked.id FROM unnest(%s::text[], %s::int[]) AS wanted(endpoint_id, n) "
                f"CROSS JOIN LATERAL (SELECT id FROM {table} WHERE endpoint_id = wanted.endpoint_id AND {due} "
                f"ORDER BY next_attempt_at LIMIT wanted.n FOR UPDATE SKIP LOCKED) AS picked"
                f") RETURNING endpoint_id, id",
                [adapt(until), list(wanted), list(wanted.values()), adapt(now), adapt(now)],
            )
            rows = cursor.fetchall()
        else:
            rows = []
            for endpoint_id, count in wanted.items():
                cursor.execute(
                    f"UPDATE {table} SET lease_until = %s WHERE id IN (SELECT id FROM {table} "  # noqa: S608
                    f"WHERE endpoint_id = %s AND {due} ORDER BY next_attempt_at LIMIT %s) RETURNING endpoint_id, id",
                    [adapt(until), endpoint_id, adapt(now), adapt(now), count],
                )
                rows += cursor.fetchall()
    for endpoint_id, delivery_id in rows:
        leased.setdefault(endpoint_id, []).append(delivery_id)
    return leased


def _lease_shares(allowed: dict[str, int], capacity: int, *, now: datetime, until: datetime) -> dict[str, list[int]]:
    """Lease up to ``capacity`` in all, in equal shares over the endpoints (in their round-robin order),
    each within what it is allowed; a share one endpoint has no due work for goes to the others."""
    leased: dict[str, list[int]] = {}
    room = capacity
    while allowed and room > 0:
        share = max(1, room // len(allowed))
        wanted: dict[str, int] = {}
        for endpoint_id, count in allowed.items():
            take = min(count, share, room - sum(wanted.values()))
            if take <= 0:
                break
            wanted[endpoint_id] = take
        got = _lease(wanted, now=now, until=until)
        for endpoint_id, ids in got.items():
            leased.setdefault(endpoint_id, []).extend(ids)
            room -= len(ids)
        # Only an endpoint that got all it asked for may have more due.
        allowed = {
            endpoint_id: allowed[endpoint_id] - take
            for endpoint_id, take in wanted.items()
            if len(got.get(endpoint_id, ())) == take and allowed[endpoint_id] > take
        }
    return leased


def _ownable_schedules(endpoint_ids: list[str], *, owner: str, now: datetime) -> list[EndpointSchedule]:
    """The schedule rows of these endpoints that are free or this owner's, locked, least recently served first."""

    def lock() -> list[EndpointSchedule]:
        query = (
            EndpointSchedule.objects.filter(endpoint_id__in=endpoint_ids)
            .filter(Q(owner="") | Q(owner=owner) | Q(owned_until__lt=now))
            .select_related("endpoint")
        )
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True, of=("self",))
        return list(query.order_by(F("last_claim_at").asc(nulls_first=True)))

    rows = lock()
    if len(rows) < len(endpoint_ids):  # an endpoint's first deliveries: give it its row
        found = {row.endpoint_id for row in rows}
        missing = [EndpointSchedule(endpoint_id=pk) for pk in endpoint_ids if pk not in found]
        EndpointSchedule.objects.bulk_create(missing, ignore_conflicts=True)  # or locked by another claim just now
        rows = lock()
    return rows


def claim_due(
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    capacity: int,
    held: dict[str, int] | None = None,
    skip: set[str] | None = None,
) -> Claimed:
    """Lease up to ``capacity`` due deliveries, round robin over the endpoints this owner may schedule.

    ``held``: per endpoint, the owner's leased deliveries not yet answered (waiting or in
    flight). ``skip``: endpoints the owner takes nothing of now (it holds all they may have, or
    their latest answer, a pause or the failure that opens the circuit, is not recorded yet).
    """
    claimed = Claimed()
    if capacity <= 0:
        return claimed
    until = now + timedelta(seconds=lease_seconds)
    candidates = [pk for pk in endpoints_with_due_work(now, owner=owner) if pk not in (skip or ())]
    if not candidates:
        return claimed  # one read, no transaction: the usual answer to an owner's poll
    with transaction.atomic():
        schedules: dict[str, EndpointSchedule] = {}
        allowed: dict[str, int] = {}  # what each endpoint's limits let it lease now
        for schedule in _ownable_schedules(candidates, owner=owner, now=now):
            decided = _budget(schedule, (held or {}).get(schedule.endpoint_id, 0), now=now, want=capacity)
            if decided.wake_at is not None and (claimed.wake_at is None or decided.wake_at < claimed.wake_at):
                claimed.wake_at = decided.wake_at
            if decided.count:
                schedules[schedule.endpoint_id], allowed[schedule.endpoint_id] = schedule, decided.count
        leased = _lease_shares(allowed, capacity, now=now, until=until)
        capacity_ran_short = sum(len(ids) for ids in leased.values()) >= capacity
        touched: list[str] = []  # rows to write: newly owned, or moved to the back of the round
        for endpoint_id, ids in leased.items():
            schedule = schedules[endpoint_id]
            claimed.endpoints.append(
                EndpointClaim(schedule.endpoint, ids, schedule.next_start_at, schedule.consecutive_failures)
            )
            newly_owned = schedule.owner != owner or schedule.owned_until is None or schedule.owned_until < now
            if newly_owned or capacity_ran_short:  # the heartbeat renews what it already owns
                touched.append(endpoint_id)
        if touched:
            EndpointSchedule.objects.filter(pk__in=touched).update(owner=owner, owned_until=until, last_claim_at=now)
    return claimed


def _budget(schedule: EndpointSchedule, held: int, *, now: datetime, want: int) -> Budget:
    endpoint = schedule.endpoint
    if not endpoint.enabled:
        return Budget(count=want)  # claimed only to be cancelled
    state = EndpointState(
        held=held,
        max_in_flight=endpoint.max_in_flight,
        rate_limit_per_s=endpoint.rate_limit_per_s,
        paused_until=schedule.paused_until,
        circuit_open=schedule.circuit_opened_at is not None,
        next_probe_at=schedule.next_probe_at,
    )
    return budget(state, now=now, want=want)


def renew_ownership(*, owner: str, endpoint_ids: Iterable[str], until: datetime) -> None:
    """The owner's heartbeat: keep the endpoints it still holds work of."""
    EndpointSchedule.objects.filter(owner=owner, endpoint_id__in=list(endpoint_ids)).update(owned_until=until)


def give_up_ownership(*, owner: str, next_starts: dict[str, datetime | None]) -> None:
    """Hand endpoints back once everything leased for them is recorded; a rate-limited one keeps
    its next free start, so the next owner goes on at the same pace."""
    unpaced = [pk for pk, start in next_starts.items() if start is None]
    mine = EndpointSchedule.objects.filter(owner=owner)
    if unpaced:
        mine.filter(endpoint_id__in=unpaced).update(owner="", owned_until=None)
    for endpoint_id, start in next_starts.items():
        if start is not None:
            mine.filter(endpoint_id=endpoint_id).update(owner="", owned_until=None, next_start_at=start)


_HEALTH_FIELDS = ["consecutive_failures", "circuit_opened_at", "next_probe_at", "paused_until", "pause_reason"]


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
                failures = after.consecutive_failures
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


@dataclass(frozen=True)
class SchedulingState:
    """What an endpoint's scheduling looks like now (API, admin and dashboard show it)."""

    leased: int  # leased by the worker that owns it now: being sent, or next in line
    pending: int  # its deliveries waiting to be sent: due now or retrying later
    max_in_flight: int
    rate_limit_per_s: int | None
    paused_until: datetime | None
    pause_reason: str
    circuit_open_since: datetime | None
    next_probe_at: datetime | None
    consecutive_failures: int

    @property
    def summary(self) -> str:
        if self.circuit_open_since is not None:
            return f"circuit open since {self.circuit_open_since:%Y-%m-%d %H:%M:%S} UTC"
        if self.paused_until is not None:
            return f"paused until {self.paused_until:%Y-%m-%d %H:%M:%S} UTC ({self.pause_reason})"
        return f"{self.leased} being sent (up to {self.max_in_flight} at once), {self.pending} pending"


def scheduling_state(endpoint: Endpoint, *, now: datetime) -> SchedulingState:
    schedule = EndpointSchedule.objects.filter(endpoint=endpoint).first() or EndpointSchedule(endpoint=endpoint)
    pending = Delivery.objects.filter(endpoint=endpoint).pending()
    paused = schedule.paused_until if schedule.paused_until and schedule.paused_until > now else None
    return SchedulingState(
        leased=pending.in_flight(now).count(),
        pending=pending.count(),
        max_in_flight=endpoint.max_in_flight,
        rate_limit_per_s=endpoint.rate_limit_per_s,
        paused_until=paused,
        pause_reason=schedule.pause_reason if paused else "",
        circuit_open_since=schedule.circuit_opened_at,
        next_probe_at=schedule.next_probe_at if schedule.circuit_opened_at else None,
        consecutive_failures=schedule.consecutive_failures,
    )
