"""The dashboard's numbers, kept as attempts are recorded: per-bucket rollups and each endpoint's health.

``record_stats`` runs in the transaction that inserts the attempts, so the numbers and
the attempt log agree. Each batch is one upsert that adds to the rollup rows and one
that moves the endpoints' health forward, whatever the batch size.
"""

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from time import monotonic
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from deliveries.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Attempt,
    AttemptOutcome,
    AttemptRollup,
    Granularity,
)
from subscriptions.health import RequestsSeen, record_requests
from subscriptions.models import EndpointHealth

FINE_ROLLUPS_KEPT = timedelta(days=2)
HOURLY_ROLLUPS_KEPT = timedelta(days=90)
# The rollup's counters, in the order ``add_to_rollups`` passes them.
ROLLUP_COUNTERS = (
    "successes",
    "retries",
    "failures",
    "responses",
    "first_attempts",
    "first_successes",
    *LATENCY_COLUMNS,
)
_COUNTED = ("delivery", "number", "started_at", "duration_ms", "status_code", "error", "outcome", "request_made")
_PRUNE_EVERY_SECONDS = 600.0
_last_prune = 0.0


def latency_bucket(duration_ms: int) -> int:
    """Index of the histogram bucket for this duration (the last one holds everything slower)."""
    return bisect_left(LATENCY_BOUNDS_MS, duration_ms)


def bucket_start(moment: datetime, granularity: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % granularity, tz=UTC)


@dataclass
class Tally:
    successes: int = 0
    retries: int = 0
    failures: int = 0
    responses: int = 0
    first_attempts: int = 0
    first_successes: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))

    def add(self, attempt: Attempt) -> None:
        if attempt.outcome == AttemptOutcome.SUCCESS:
            self.successes += 1
        elif attempt.outcome == AttemptOutcome.RETRY:
            self.retries += 1
        else:
            self.failures += 1
        if attempt.number == 1:
            self.first_attempts += 1
            self.first_successes += attempt.outcome == AttemptOutcome.SUCCESS
        if attempt.status_code is not None:
            self.responses += 1
            self.latency[latency_bucket(attempt.duration_ms)] += 1

    def merge(self, other: "Tally") -> None:
        self.successes += other.successes
        self.retries += other.retries
        self.failures += other.failures
        self.responses += other.responses
        self.first_attempts += other.first_attempts
        self.first_successes += other.first_successes
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]


RollupKey = tuple[str, int, datetime]  # endpoint id, granularity, bucket start


def tally(attempts: Iterable[tuple[str, Attempt]]) -> dict[RollupKey, tuple[str, Tally]]:
    """(tenant id, attempt) pairs counted into every granularity's buckets: {key: (tenant id, tally)}."""
    tallies: dict[RollupKey, tuple[str, Tally]] = {}
    for tenant_id, attempt in attempts:
        for granularity in Granularity.values:
            key = (attempt.delivery.endpoint_id, granularity, bucket_start(attempt.started_at, granularity))
            tallies.setdefault(key, (tenant_id, Tally()))[1].add(attempt)
    return tallies


def record_stats(attempts: Sequence[Attempt], *, now: datetime) -> None:
    """Add these attempts (their deliveries' endpoints loaded) to the rollups and the endpoints' health
    (which may disable an endpoint failing past the auto-disable period).

    Attempts that made no request count in the rollups, as they are in the log, but say nothing
    about the endpoint's health.
    """
    if not attempts:
        return
    add_to_rollups(tally((attempt.delivery.endpoint.tenant_id, attempt) for attempt in attempts))
    record_requests(_requests_seen([attempt for attempt in attempts if attempt.request_made]), now=now)


@lru_cache(maxsize=32)
def _rollup_upsert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    table = quote(AttemptRollup._meta.db_table)
    keys = ["endpoint_id", "granularity", "bucket_start"]
    counters = ROLLUP_COUNTERS
    columns = ["tenant_id", *keys, *counters]
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    additions = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in counters)
    return (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES {', '.join([row] * rows)}"  # noqa: S608
        f" ON CONFLICT ({', '.join(quote(c) for c in keys)}) DO UPDATE SET {additions}"
    )


def add_to_rollups(tallies: dict[RollupKey, tuple[str, Tally]]) -> None:
    """One upsert adding every tally; rows go in key order so concurrent recorders lock alike."""
    if not tallies:
        return
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    for key in sorted(tallies):
        endpoint_id, granularity, start = key
        tenant_id, counts = tallies[key]
        params += [tenant_id, endpoint_id, granularity, adapt(start)]
        params += [
            counts.successes,
            counts.retries,
            counts.failures,
            counts.responses,
            counts.first_attempts,
            counts.first_successes,
            *counts.latency,
        ]
    with connection.cursor() as cursor:
        cursor.execute(_rollup_upsert_sql(len(tallies)), params)


def _requests_seen(attempts: list[Attempt]) -> list[RequestsSeen]:
    """Per endpoint: the latest attempt, the last success and the failures after it."""
    by_endpoint: dict[str, list[Attempt]] = {}
    for attempt in sorted(attempts, key=lambda a: (a.started_at, a.number)):
        by_endpoint.setdefault(attempt.delivery.endpoint_id, []).append(attempt)
    seen = []
    for ordered in by_endpoint.values():
        last = ordered[-1]
        successes = [i for i, attempt in enumerate(ordered) if attempt.outcome == AttemptOutcome.SUCCESS]
        seen.append(
            RequestsSeen(
                endpoint=last.delivery.endpoint,
                last_attempt_at=last.started_at,
                last_status_code=last.status_code,
                last_error=last.error,
                failures_after_last_success=len(ordered) - successes[-1] - 1 if successes else len(ordered),
                last_success_at=ordered[successes[-1]].started_at if successes else None,
            )
        )
    return seen


def prune_rollups(*, now: datetime, force: bool = False) -> int:
    """Delete five-minute buckets older than two days and hourly ones older than 90 days.

    At most every ten minutes per process; returns how many rows went.
    """
    global _last_prune
    if not force and monotonic() - _last_prune < _PRUNE_EVERY_SECONDS:
        return 0
    _last_prune = monotonic()
    old = Q(granularity=Granularity.FIVE_MINUTES, bucket_start__lt=now - FINE_ROLLUPS_KEPT) | Q(
        granularity=Granularity.HOUR, bucket_start__lt=now - HOURLY_ROLLUPS_KEPT
    )
    deleted, _ = AttemptRollup.objects.filter(old).delete()
    return deleted


@transaction.atomic
def rebuild_stats(*, chunk: int = 20_000) -> int:
    """Recompute every rollup and health row from the attempts (after a bulk import; workers stopped).

    The auto-disable clocks that were running are kept (the attempts cannot tell when an admin
    re-enabled); an endpoint found failing without one starts its clock now.
    """
    clocks = list(EndpointHealth.objects.filter(failing_since__isnull=False).values_list("pk", "failing_since"))
    AttemptRollup.objects.all().delete()
    EndpointHealth.objects.all().delete()
    attempts = (
        Attempt.objects.select_related("delivery__endpoint")
        .only(*_COUNTED, "delivery__endpoint_id", "delivery__endpoint__tenant_id")
        .order_by("started_at", "id")
    )
    tallies: dict[RollupKey, tuple[str, Tally]] = {}
    batch: list[Attempt] = []
    count = 0
    for attempt in attempts.iterator(chunk_size=chunk):
        count += 1
        batch.append(attempt)
        if len(batch) == chunk:
            _merge(tallies, tally((a.delivery.endpoint.tenant_id, a) for a in batch))
            _rebuild_health(batch)
            batch = []
    _merge(tallies, tally((a.delivery.endpoint.tenant_id, a) for a in batch))
    _rebuild_health(batch)
    recent = bucket_start(timezone.now() - FINE_ROLLUPS_KEPT, Granularity.FIVE_MINUTES)
    keys = sorted(key for key in tallies if key[1] != Granularity.FIVE_MINUTES or key[2] >= recent)
    for start in range(0, len(keys), 500):
        add_to_rollups({key: tallies[key] for key in keys[start : start + 500]})
    for endpoint_id, failing_since in clocks:
        EndpointHealth.objects.filter(pk=endpoint_id, consecutive_failures__gt=0).update(failing_since=failing_since)
    return count


def _rebuild_health(attempts: list[Attempt]) -> None:
    """Health from old attempts, leaving the auto-disable clocks alone (``rebuild_stats`` restores them)."""
    record_requests(_requests_seen([attempt for attempt in attempts if attempt.request_made]), now=timezone.now())


def _merge(into: dict[RollupKey, tuple[str, Tally]], more: dict[RollupKey, tuple[str, Tally]]) -> None:
    for key, (tenant_id, counts) in more.items():
        if key in into:
            into[key][1].merge(counts)
        else:
            into[key] = (tenant_id, counts)
