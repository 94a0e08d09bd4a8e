"""Counting as the work is done: attempts into the dashboard's rollups and /metrics' attempt totals,
published events into the publish totals, each in the transaction that writes the rows it counts.

Two tallies of attempts, which differ on purpose:

- **rollups** (``AttemptRollup``, per endpoint and time bucket; read by ``numbers.stats`` for the
  dashboard and the API): outcomes, first tries, and a latency histogram of the attempts that got
  an *answer* (``responses``): the receiver's response times;
- **totals** (``AttemptTotal``, per tenant since the beginning, sharded per connection; read by
  ``numbers.metrics`` for ``/metrics``): outcomes, and a duration histogram of every attempt that
  made a *request* (``requests``), timeouts and refused connections included: what sending cost.

Each is one upsert per batch, whatever the batch size, rows in key order so concurrent recorders
lock alike; each connection adds to its own totals shard, so writers do not queue on one row.
"""

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Self

from django.db import connection

from deliveries.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    TOTAL_SHARDS,
    Attempt,
    AttemptOutcome,
    AttemptRollup,
    AttemptTotal,
    Granularity,
    PublishTotal,
)
from ground.statements import Statement


def latency_bucket(duration_ms: int) -> int:
    """Index of the histogram bucket for this duration (the last one holds everything slower)."""
    return bisect_left(LATENCY_BOUNDS_MS, duration_ms)


def bucket_start(moment: datetime, granularity: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % granularity, tz=UTC)


@dataclass
class Tally:
    """What a set of attempts adds to a rollup row: one field per counter column of ``AttemptRollup`` (the
    latency histogram is the list of ``LATENCY_COLUMNS``). A new counter is a column, a field, and its
    rule in ``add``."""

    successes: int = 0
    retries: int = 0
    failures: int = 0
    responses: int = 0  # attempts that got an answer: what the latency histogram counts
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

    def values(self) -> list[int]:
        """The counters in ``ROLLUP_COUNTERS`` order."""
        return [getattr(self, name) for name in _SCALARS] + list(self.latency)

    def merge(self, other: "Tally") -> None:
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        """From a row of summed counters named as the columns (None counts as 0)."""
        return cls(
            **{name: row[name] or 0 for name in _SCALARS},
            latency=[row[column] or 0 for column in LATENCY_COLUMNS],
        )


_SCALARS = tuple(f.name for f in fields(Tally) if f.name != "latency")
ROLLUP_COUNTERS = (*_SCALARS, *LATENCY_COLUMNS)  # the counter columns of AttemptRollup


RollupKey = tuple[str, int, datetime]  # endpoint id, granularity, bucket start


def tally(attempts: Iterable[tuple[str, Attempt]]) -> dict[RollupKey, tuple[str, Tally]]:
    """(tenant id, attempt) pairs counted into every granularity's buckets: {key: (tenant id, tally)}."""
    tallies: dict[RollupKey, tuple[str, Tally]] = {}
    for tenant_id, attempt in attempts:
        for granularity in Granularity.values:
            key = (attempt.delivery.endpoint_id, granularity, bucket_start(attempt.started_at, granularity))
            tallies.setdefault(key, (tenant_id, Tally()))[1].add(attempt)
    return tallies


@lru_cache(maxsize=32)
def _rollup_upsert_sql(rows: int | None) -> str:
    """The upsert of ``rows`` rows of placeholders, or (None, PostgreSQL) of one array per column: one text
    whatever the number of rows, which PostgreSQL prepares once per connection."""
    quote = connection.ops.quote_name
    table = quote(AttemptRollup._meta.db_table)
    keys = ["endpoint_id", "granularity", "bucket_start"]
    counters = ROLLUP_COUNTERS
    columns = ["tenant_id", *keys, *counters]
    if rows is None:
        types = ["text", "text", "int", "timestamptz", *["int"] * len(counters)]
        source = f"SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for kind in types)})"  # noqa: S608 - casts only
    else:
        source = "VALUES " + ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * rows)
    additions = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in counters)
    return (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) {source}"  # noqa: S608
        f" ON CONFLICT ({', '.join(quote(c) for c in keys)}) DO UPDATE SET {additions}"
    )


def add_to_rollups(tallies: dict[RollupKey, tuple[str, Tally]]) -> None:
    """One upsert adding every tally; rows go in key order so concurrent recorders lock alike."""
    if statement := rollups_statement(tallies):
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def rollups_statement(tallies: dict[RollupKey, tuple[str, Tally]]) -> Statement | None:
    """``add_to_rollups`` as a statement for the caller to run (with others, in one round trip)."""
    if not tallies:
        return None
    adapt = connection.ops.adapt_datetimefield_value
    rows: list[list[Any]] = []
    for key in sorted(tallies):
        endpoint_id, granularity, start = key
        tenant_id, counts = tallies[key]
        rows.append([tenant_id, endpoint_id, granularity, adapt(start), *counts.values()])
    if connection.vendor == "postgresql":
        return _rollup_upsert_sql(None), [list(column) for column in zip(*rows, strict=True)]
    return _rollup_upsert_sql(len(rows)), [value for row in rows for value in row]


# --- totals ------------------------------------------------------------------------------------------

ATTEMPT_COUNTERS = ("succeeded", "retrying", "failed", "requests", "duration_ms_sum", *LATENCY_COLUMNS)
_OUTCOME_COUNTER: dict[str, str] = {
    AttemptOutcome.SUCCESS: "succeeded",
    AttemptOutcome.RETRY: "retrying",
    AttemptOutcome.FAIL: "failed",
}


def _shard() -> str:
    """This connection's shard, as SQL (placeholders are in use, so ``%`` is written ``%%``)."""
    return f"pg_backend_pid() %% {TOTAL_SHARDS}" if connection.vendor == "postgresql" else "0"


def _upsert(table: str, counters: tuple[str, ...], rows_sql: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("tenant_id", "shard", *counters))
    additions = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in counters)
    # Only quoted identifiers and placeholders go into the text; values are parameters.
    return f"INSERT INTO {table} ({columns}) {rows_sql} ON CONFLICT (tenant_id, shard) DO UPDATE SET {additions}"  # noqa: S608


@lru_cache(maxsize=2)
def published_sql(*, in_publish_statement: bool) -> str:
    """Adds to a tenant's publish totals: parameters (tenant, events, deliveries, schema violations).

    ``in_publish_statement``: a data-modifying CTE of the PostgreSQL publish statement, which
    adds one event, only when that statement inserted it (a repeated idempotency key adds
    nothing); parameters (tenant, deliveries, schema violations).
    """
    table = connection.ops.quote_name(PublishTotal._meta.db_table)
    shard = _shard()
    rows = (
        f"SELECT %s, {shard}, 1, %s, %s FROM parent"  # noqa: S608 - a constant only
        if in_publish_statement
        else f"VALUES (%s, {shard}, %s, %s, %s)"
    )
    return _upsert(table, ("events", "deliveries", "schema_violations"), rows)


def count_published(tenant_id: str, deliveries: int, events: int = 1, schema_violations: int = 0) -> None:
    """Inside the transaction that inserted the events (a batch, or databases without the one-statement path).
    ``schema_violations``: how many of the events broke their type's schema and went out (mode ``warn``)."""
    with connection.cursor() as cursor:
        cursor.execute(published_sql(in_publish_statement=False), [tenant_id, events, deliveries, schema_violations])


@lru_cache(maxsize=16)
def _attempts_sql(rows: int) -> str:
    table = connection.ops.quote_name(AttemptTotal._meta.db_table)
    row = "(" + ", ".join(["%s", _shard(), *["%s"] * len(ATTEMPT_COUNTERS)]) + ")"
    return _upsert(table, ATTEMPT_COUNTERS, "VALUES " + ", ".join([row] * rows))


def count_attempts(attempts: Iterable[tuple[str, Attempt]]) -> None:
    """Add (tenant id, attempt) pairs to the attempt totals; call in the transaction that inserts them."""
    if statement := attempts_statement(attempts):
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def attempts_statement(attempts: Iterable[tuple[str, Attempt]]) -> Statement | None:
    """``count_attempts`` as a statement for the caller to run (with others, in one round trip)."""
    by_tenant: dict[str, dict[str, int]] = {}
    for tenant_id, attempt in attempts:
        counts = by_tenant.setdefault(tenant_id, dict.fromkeys(ATTEMPT_COUNTERS, 0))
        counts[_OUTCOME_COUNTER[attempt.outcome]] += 1
        if attempt.request_made:
            counts["requests"] += 1
            counts["duration_ms_sum"] += attempt.duration_ms
            counts[LATENCY_COLUMNS[latency_bucket(attempt.duration_ms)]] += 1
    if not by_tenant:
        return None
    params: list[Any] = []
    for tenant_id in sorted(by_tenant):  # one order for every recorder: rows lock alike
        params += [tenant_id, *by_tenant[tenant_id].values()]
    return _attempts_sql(len(by_tenant)), params
