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
   that no other live owner schedules; a claim for the endpoints a wake-up named skips this;
2. lock the schedule rows of those that are free or already this worker's, ``FOR UPDATE
   SKIP LOCKED``, least recently served first (round robin over endpoints, so over tenants);
3. ask ``deliveries.pacing.budget`` how many more each may lease (a few per request it may have
   open at once: its ``max_in_flight``, or below it the concurrency its owner has learnt
   (``deliveries.adaptive``); or about a second of its rate; none while paused; one probe while its
   circuit is open) and lease that many of its most overdue deliveries;
4. mark the endpoints served, and this worker their owner.

What the answers say of an endpoint (a pause, its circuit) is written by the recording
transaction (``deliveries.services.circuits``); claims read it. The concurrency an owner learnt is written
by the owner, with its heartbeat and when it hands the endpoint back, so the next owner starts from it.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When

from deliveries.adaptive import START_LIMIT
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule, Payload
from deliveries.pacing import (
    Budget,
    EndpointState,
    budget,
)
from deliveries.services.ordering import free_to_go_sql
from events.models import Event
from ground import rows
from ground.db import bound_cursor
from ground.model_fields import concrete_field
from subscriptions.models import Endpoint

logger = logging.getLogger(__name__)

_PENDING = DeliveryStatus.PENDING.value
LOCKED_RETRY_SECONDS = 0.02  # an endpoint of this owner's whose row was locked is claimed again this soon


@dataclass
class EndpointClaim:
    """What one claim leased for one endpoint, with what its owner needs to pace it."""

    endpoint: Endpoint
    delivery_ids: list[int]
    next_start_at: datetime | None  # the rate limit's next free start, as the last owner left it
    down_in_a_row: int  # requests in a row that found it down (the circuit's streak)
    deliveries: list[Delivery] = field(default_factory=list)  # the same, loaded with their events' bodies
    # Adaptive concurrency as the last owner left it: (limit or None if never learnt, limited by, limited at).
    concurrency: tuple[int | None, str, int | None] = (None, "", None)


@dataclass
class Claimed:
    endpoints: list[EndpointClaim] = field(default_factory=list)
    wake_at: datetime | None = None  # when a limit of time (pause, probe) lets more of the due work go
    more_due: bool = False  # due work may be left that this owner takes later (a limit, capacity, a stopped lane)

    @property
    def delivery_ids(self) -> list[int]:
        return [pk for claim in self.endpoints for pk in claim.delivery_ids]

    @property
    def deliveries(self) -> list[Delivery]:
        return [delivery for claim in self.endpoints for delivery in claim.deliveries]


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
              AND (d.lease_until IS NULL OR d.lease_until < %s) AND {free_to_go_sql("d")}
        ) AND NOT EXISTS (
            SELECT 1 FROM {schedules} s
            WHERE s.endpoint_id = walk.endpoint_id AND s.owner <> '' AND s.owner <> %s AND s.owned_until >= %s
        )
    """  # noqa: S608 - identifiers and a constant only
    with bound_cursor() as cursor:
        cursor.execute(sql, [adapt(now), adapt(now), adapt(now), owner, adapt(now)])
        return [row[0] for row in cursor.fetchall()]


def _lease(wanted: dict[str, int], *, now: datetime, until: datetime, ordered: bool) -> dict[str, list[Delivery]]:
    """Lease up to ``wanted[endpoint]`` of each endpoint's most overdue due deliveries; by endpoint, loaded
    with their events (all but the data: the body is what is sent) and payloads. ``ordered``: some of the endpoints are
    ordered per key (only then does the statement ask whether one of a delivery's key is ahead of it)."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    due_params = [adapt(now)] * (3 if ordered else 2)
    if connection.vendor == "postgresql":  # every endpoint, and the loading, in one statement
        with bound_cursor() as cursor:
            cursor.execute(
                _lease_and_load_sql(ordered), [adapt(until), list(wanted), list(wanted.values()), *due_params]
            )
            deliveries = [_loaded(row) for row in cursor.fetchall()]
    else:
        ids: list[int] = []
        with bound_cursor() as cursor:
            for endpoint_id, count in wanted.items():
                cursor.execute(
                    f"UPDATE {table} SET lease_until = %s WHERE id IN (SELECT id FROM {table} d "  # noqa: S608
                    f"WHERE endpoint_id = %s AND {_due_sql(ordered)} ORDER BY next_attempt_at LIMIT %s) RETURNING id",
                    [adapt(until), endpoint_id, *due_params, count],
                )
                ids += [row[0] for row in cursor.fetchall()]
        deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("event", "payload").defer("event__data"))
    leased: dict[str, list[Delivery]] = {}
    for delivery in sorted(deliveries, key=lambda delivery: (delivery.next_attempt_at, delivery.pk)):
        leased.setdefault(delivery.endpoint_id, []).append(delivery)
    return leased


_DELIVERY_FIELDS, _DELIVERY_COLUMNS = rows.columns(Delivery, prefix="leased")
_EVENT_FIELDS, _EVENT_COLUMNS = rows.columns(Event, prefix="e", leave_out=["data"])  # the body is what is sent


def _due_sql(ordered: bool) -> str:
    """What a claim may lease of the deliveries ``d``: pending, due, held by no worker, and (of ordered endpoints)
    not held back by the deliveries before it with its ordering key. Parameters: now, now (and now)."""
    due = f"d.status = '{_PENDING}' AND d.next_attempt_at <= %s AND (d.lease_until IS NULL OR d.lease_until < %s)"
    return f"{due} AND {free_to_go_sql('d')}" if ordered else due


@lru_cache(maxsize=2)
def _lease_and_load_sql(ordered: bool) -> str:
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    returned = ", ".join(quote(field.column) for field in _DELIVERY_FIELDS)
    return (
        f"WITH leased AS (UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608 - identifiers only
        f"SELECT picked.id FROM unnest(%s::text[], %s::int[]) AS wanted(endpoint_id, n) "
        f"CROSS JOIN LATERAL (SELECT d.id FROM {table} d "
        f"WHERE d.endpoint_id = wanted.endpoint_id AND {_due_sql(ordered)} "
        f"ORDER BY d.next_attempt_at LIMIT wanted.n FOR UPDATE OF d SKIP LOCKED) AS picked"
        f") RETURNING {returned}) "
        f"SELECT {_DELIVERY_COLUMNS}, {_EVENT_COLUMNS}, p.body FROM leased JOIN {quote(Event._meta.db_table)} e "
        f"ON e.{quote(Event._meta.pk.column)} = leased.{quote(Delivery._meta.get_field('event').column)} "
        f"LEFT JOIN {quote(Payload._meta.db_table)} p "
        f"ON p.{quote(Payload._meta.pk.column)} = leased.{quote(Delivery._meta.get_field('payload').column)}"
    )


def _loaded(row: tuple[Any, ...]) -> Delivery:
    """A delivery, its event (data deferred) and its payload, if any, from one row of the lease-and-load
    statement."""
    split = len(_DELIVERY_FIELDS)
    delivery = rows.instance(Delivery, _DELIVERY_FIELDS, row[:split])
    delivery.event = rows.instance(Event, _EVENT_FIELDS, row[split:-1])
    if delivery.payload_id is not None:
        delivery.payload = Payload(id=delivery.payload_id, event_id=delivery.event_id, body=row[-1])
    return delivery


def _lease_shares(
    allowed: dict[str, int], capacity: int, *, now: datetime, until: datetime, ordered: bool
) -> dict[str, list[Delivery]]:
    """Lease up to ``capacity`` in all, in equal shares over the endpoints (in their round-robin order),
    each within what it is allowed; a share one endpoint has no due work for goes to the others."""
    leased: dict[str, list[Delivery]] = {}
    room = capacity
    while allowed and room > 0:
        share = max(1, room // len(allowed))
        wanted: dict[str, int] = {}
        for endpoint_id, count in allowed.items():
            take = min(count, share, room - sum(wanted.values()))
            if take <= 0:
                break
            wanted[endpoint_id] = take
        got = _lease(wanted, now=now, until=until, ordered=ordered)
        for endpoint_id, deliveries in got.items():
            leased.setdefault(endpoint_id, []).extend(deliveries)
            room -= len(deliveries)
        # Only an endpoint that got all it asked for may have more due; those not asked yet (more endpoints
        # than room) take their turn in the next round.
        allowed = {
            endpoint_id: count - wanted.get(endpoint_id, 0)
            for endpoint_id, count in allowed.items()
            if endpoint_id not in wanted
            or (len(got.get(endpoint_id, ())) == wanted[endpoint_id] and count > wanted[endpoint_id])
        }
    return leased


def _ownable_schedules(endpoint_ids: list[str], *, owner: str, now: datetime) -> list[EndpointSchedule]:
    """The schedule rows of these endpoints that are free or this owner's, locked, least recently served first,
    each with its endpoint."""

    def lock() -> list[EndpointSchedule]:
        if connection.vendor == "postgresql":  # one statement written once: a claim's most frequent query
            adapt = connection.ops.adapt_datetimefield_value
            with bound_cursor() as cursor:
                cursor.execute(_lock_schedules_sql(), [endpoint_ids, owner, adapt(now)])
                return [_schedule_with_endpoint(row) for row in cursor.fetchall()]
        query = (
            EndpointSchedule.objects.filter(endpoint_id__in=endpoint_ids)
            .filter(Q(owner="") | Q(owner=owner) | Q(owned_until__lt=now))
            .select_related("endpoint")
        )
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True, of=("self",))
        return list(query.order_by(F("last_claim_at").asc(nulls_first=True)))

    found = lock()
    if len(found) < len(endpoint_ids):  # an endpoint's first deliveries: give it its row
        present = {row.endpoint_id for row in found}
        missing = [EndpointSchedule(endpoint_id=pk) for pk in endpoint_ids if pk not in present]
        EndpointSchedule.objects.bulk_create(missing, ignore_conflicts=True)  # or locked by another claim just now
        found = lock()
    return found


_SCHEDULE_FIELDS, _SCHEDULE_COLUMNS = rows.columns(EndpointSchedule, prefix="s")
_ENDPOINT_FIELDS, _ENDPOINT_COLUMNS = rows.columns(Endpoint, prefix="e")


@lru_cache(maxsize=1)
def _lock_schedules_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {_SCHEDULE_COLUMNS}, {_ENDPOINT_COLUMNS} FROM {quote(EndpointSchedule._meta.db_table)} s "  # noqa: S608
        f"JOIN {quote(Endpoint._meta.db_table)} e ON e.{quote(Endpoint._meta.pk.column)} = s.endpoint_id "
        "WHERE s.endpoint_id = ANY(%s::text[]) AND (s.owner = '' OR s.owner = %s OR s.owned_until < %s) "
        "ORDER BY s.last_claim_at ASC NULLS FIRST FOR UPDATE OF s SKIP LOCKED"
    )


def _schedule_with_endpoint(row: tuple[Any, ...]) -> EndpointSchedule:
    split = len(_SCHEDULE_FIELDS)
    schedule = rows.instance(EndpointSchedule, _SCHEDULE_FIELDS, row[:split])
    schedule.endpoint = rows.instance(Endpoint, _ENDPOINT_FIELDS, row[split:])
    return schedule


def _owned_but_locked(candidates: list[str], locked: list[EndpointSchedule], *, owner: str, now: datetime) -> bool:
    """Whether an endpoint this owner holds was skipped because its row was locked (this process's own
    heartbeat or hand-back writing it): its work is claimed again shortly, not left to the sweep."""
    skipped = set(candidates) - {schedule.endpoint_id for schedule in locked}
    mine = EndpointSchedule.objects.filter(endpoint_id__in=list(skipped), owner=owner, owned_until__gte=now)
    return mine.exists()


def claim_due(
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    capacity: int,
    held: dict[str, int] | None = None,
    limits: dict[str, int] | None = None,
    skip: set[str] | None = None,
    endpoint_ids: list[str] | None = None,
) -> Claimed:
    """Lease up to ``capacity`` due deliveries, round robin over the endpoints this owner may schedule.

    ``held``: per endpoint, the owner's leased deliveries not yet answered (waiting or in
    flight). ``limits``: per endpoint the owner holds, how many requests it lets open at once now (adaptive
    concurrency); an endpoint not held starts where its schedule says. ``skip``: endpoints the owner takes
    nothing of now (it holds all they may have, or their latest answer, a pause or the failure that opens the
    circuit, is not recorded yet).
    ``endpoint_ids``: look at these endpoints only (a wake-up named them), not for every
    endpoint with due work.
    """
    claimed = Claimed()
    if capacity <= 0:
        claimed.more_due = True
        return claimed
    until = now + timedelta(seconds=lease_seconds)
    with_work = endpoints_with_due_work(now, owner=owner) if endpoint_ids is None else endpoint_ids
    candidates = [pk for pk in with_work if pk not in (skip or ())]
    claimed.more_due = len(candidates) < len(with_work)  # a stopped lane's work waits for its answer
    if not candidates:
        return claimed  # one read, no transaction: the usual answer to an owner's poll
    with transaction.atomic():
        schedules: dict[str, EndpointSchedule] = {}
        allowed: dict[str, int] = {}  # what each endpoint's limits let it lease now
        ownable = _ownable_schedules(candidates, owner=owner, now=now)
        if len(ownable) < len(candidates) and _owned_but_locked(candidates, ownable, owner=owner, now=now):
            claimed.more_due, claimed.wake_at = True, now + timedelta(seconds=LOCKED_RETRY_SECONDS)
        for schedule in ownable:
            decided = _budget(
                schedule,
                (held or {}).get(schedule.endpoint_id, 0),
                (limits or {}).get(schedule.endpoint_id),
                now=now,
                want=capacity,
            )
            if decided.wake_at is not None and (claimed.wake_at is None or decided.wake_at < claimed.wake_at):
                claimed.wake_at = decided.wake_at
            if decided.count:
                schedules[schedule.endpoint_id], allowed[schedule.endpoint_id] = schedule, decided.count
            elif decided.wake_at is None:
                claimed.more_due = True  # it holds all it may: what is due goes as its answers come
        ordered = any(schedules[endpoint_id].endpoint.ordered for endpoint_id in allowed)
        leased = _lease_shares(allowed, capacity, now=now, until=until, ordered=ordered)
        capacity_ran_short = sum(len(ids) for ids in leased.values()) >= capacity
        claimed.more_due = (
            claimed.more_due
            or capacity_ran_short
            or any(len(leased.get(endpoint_id, ())) >= count for endpoint_id, count in allowed.items())
        )
        touched: list[str] = []  # rows to write: newly owned, or moved to the back of the round
        for endpoint_id, deliveries in leased.items():
            schedule = schedules[endpoint_id]
            ids = [delivery.pk for delivery in deliveries]
            concurrency = (schedule.concurrency_limit, schedule.concurrency_limited_by, schedule.concurrency_limited_at)
            claimed.endpoints.append(
                EndpointClaim(
                    schedule.endpoint, ids, schedule.next_start_at, schedule.down_in_a_row, deliveries, concurrency
                )
            )
            newly_owned = schedule.owner != owner or schedule.owned_until is None or schedule.owned_until < now
            if newly_owned or capacity_ran_short:  # the heartbeat renews what it already owns
                touched.append(endpoint_id)
        if touched:
            EndpointSchedule.objects.filter(pk__in=touched).update(owner=owner, owned_until=until, last_claim_at=now)
    return claimed


def _budget(schedule: EndpointSchedule, held: int, limit: int | None, *, now: datetime, want: int) -> Budget:
    """``limit``: how many requests the owner lets open at once now, if it holds the endpoint already."""
    endpoint = schedule.endpoint
    if not endpoint.enabled:
        return Budget(count=want)  # claimed only to be cancelled
    if limit is None:
        limit = endpoint.max_in_flight
        if endpoint.adaptive_concurrency:
            limit = min(limit, schedule.concurrency_limit or START_LIMIT)
    state = EndpointState(
        held=held,
        max_in_flight=limit,
        rate_limit_per_s=endpoint.rate_limit_per_s,
        paused_until=schedule.paused_until,
        circuit_open=schedule.circuit_opened_at is not None,
        next_probe_at=schedule.next_probe_at,
    )
    return budget(state, now=now, want=want)


ConcurrencyState = tuple[int | None, str, int | None]  # (limit, limited by, limited at), as the schedule holds it
_CONCURRENCY_COLUMNS = ("concurrency_limit", "concurrency_limited_by", "concurrency_limited_at")


def renew_ownership(
    *, owner: str, endpoint_ids: Iterable[str], until: datetime, concurrency: dict[str, ConcurrencyState] | None = None
) -> None:
    """The owner's heartbeat: keep the endpoints it still holds work of, writing the concurrency it has learnt
    for them (``concurrency``: only what changed) in the same statement."""
    mine = EndpointSchedule.objects.filter(owner=owner, endpoint_id__in=list(endpoint_ids))
    mine.update(owned_until=until, **_concurrency_update(concurrency or {}))


def give_up_ownership(
    *, owner: str, next_starts: dict[str, datetime | None], concurrency: dict[str, ConcurrencyState] | None = None
) -> None:
    """Hand endpoints back once everything leased for them is recorded; a rate-limited one keeps
    its next free start, so the next owner goes on at the same pace, and each the concurrency its owner learnt
    (``concurrency``: what the schedule does not hold yet), so the next owner starts from it."""
    learnt = _concurrency_update(concurrency or {})
    unpaced = [pk for pk, start in next_starts.items() if start is None]
    mine = EndpointSchedule.objects.filter(owner=owner)
    if unpaced:
        mine.filter(endpoint_id__in=unpaced).update(owner="", owned_until=None, **learnt)
    for endpoint_id, start in next_starts.items():
        if start is not None:
            mine.filter(endpoint_id=endpoint_id).update(owner="", owned_until=None, next_start_at=start, **learnt)


def _concurrency_update(concurrency: dict[str, ConcurrencyState]) -> dict[str, Case]:
    """The columns of an UPDATE that writes each endpoint's learnt concurrency (the others' stay)."""
    if not concurrency:
        return {}
    update = {}
    for index, name in enumerate(_CONCURRENCY_COLUMNS):
        column = concrete_field(EndpointSchedule, name)
        whens = [
            When(endpoint_id=pk, then=Value(state[index], output_field=column)) for pk, state in concurrency.items()
        ]
        update[name] = Case(*whens, default=F(name), output_field=column)
    return update


def with_due_work(endpoint_ids: list[str], *, now: datetime) -> list[str]:
    """Those of these endpoints with due deliveries no worker holds."""
    due = Delivery.objects.due_unowned(now).filter(endpoint_id__in=endpoint_ids)
    return sorted(set(due.values_list("endpoint_id", flat=True)))
