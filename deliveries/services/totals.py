"""The counters /metrics serves, kept in the database by the code that does the work.

``publish`` adds each event and its deliveries to ``PublishTotal`` in the same statement (or
transaction) that writes them; the recorder adds each batch of attempts to ``AttemptTotal`` in
the transaction that inserts them. So the counters are exact whichever process (web, worker,
a script) did the work, a restart loses nothing, and any web process serves the cluster's
numbers. Each database connection adds to its own shard row, so writers do not queue on one row.
"""

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.db import connection

from deliveries.models import LATENCY_COLUMNS, TOTAL_SHARDS, Attempt, AttemptOutcome, AttemptTotal, PublishTotal
from deliveries.services.rollups import latency_bucket

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
    """Adds one event and ``%s`` deliveries to tenant ``%s``'s publish totals.

    ``in_publish_statement``: a data-modifying CTE of the PostgreSQL publish statement, which
    adds only when that statement inserted the event (a repeated idempotency key adds nothing).
    """
    table = connection.ops.quote_name(PublishTotal._meta.db_table)
    shard = _shard()
    rows = f"SELECT %s, {shard}, 1, %s FROM parent" if in_publish_statement else f"VALUES (%s, {shard}, 1, %s)"  # noqa: S608
    return _upsert(table, ("events", "deliveries"), rows)


def count_published(tenant_id: str, deliveries: int) -> None:
    """Inside the transaction that inserted the event (databases without the one-statement path)."""
    with connection.cursor() as cursor:
        cursor.execute(published_sql(in_publish_statement=False), [tenant_id, deliveries])


@lru_cache(maxsize=16)
def _attempts_sql(rows: int) -> str:
    table = connection.ops.quote_name(AttemptTotal._meta.db_table)
    row = "(" + ", ".join(["%s", _shard(), *["%s"] * len(ATTEMPT_COUNTERS)]) + ")"
    return _upsert(table, ATTEMPT_COUNTERS, "VALUES " + ", ".join([row] * rows))


def count_attempts(attempts: Iterable[tuple[str, Attempt]]) -> None:
    """Add (tenant id, attempt) pairs to the attempt totals; call in the transaction that inserts them."""
    by_tenant: dict[str, dict[str, int]] = {}
    for tenant_id, attempt in attempts:
        counts = by_tenant.setdefault(tenant_id, dict.fromkeys(ATTEMPT_COUNTERS, 0))
        counts[_OUTCOME_COUNTER[attempt.outcome]] += 1
        if attempt.request_made:
            counts["requests"] += 1
            counts["duration_ms_sum"] += attempt.duration_ms
            counts[LATENCY_COLUMNS[latency_bucket(attempt.duration_ms)]] += 1
    if not by_tenant:
        return
    params: list[Any] = []
    for tenant_id in sorted(by_tenant):  # one order for every recorder: rows lock alike
        params += [tenant_id, *by_tenant[tenant_id].values()]
    with connection.cursor() as cursor:
        cursor.execute(_attempts_sql(len(by_tenant)), params)
