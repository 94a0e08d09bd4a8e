"""Ordered delivery per key: an ordered endpoint receives the deliveries of one ordering key one at a time,
in publish order. Keys are independent; deliveries without a key are never held back.

**Numbering.** Publishing gives each delivery of a keyed event to an ordered endpoint the key and the next
number of the (endpoint, key) pair: 1, 2, 3... The number comes from a ``KeySequence`` row, taken with an
upsert in the publishing transaction, which locks that row until the transaction commits; so the numbers
follow the order in which the publishes of one key commit, and whatever sees a delivery sees every one
before it. The number travels as ``webhook-sequence``, so a receiver can tell a gap (a delivery cancelled,
or failed for good) and a repeat (a resend keeps its number).

**The rule** (decided by the database in every claim of an ordered endpoint, whichever worker on whichever
host claims): a keyed delivery may be leased only when no other pending delivery of its endpoint and key has
a lower number, and none is leased (being sent or about to be). So the next request for a key starts only
once the one before it has been recorded as succeeded, failed for good, or cancelled; a failing head holds
its key back through its whole retry schedule (that is what a key means), and a worker that dies mid-send
holds it until its lease runs out and the head is sent again. A resend or replay keeps the delivery's
number: it goes before the key's later deliveries that have not started. Once an endpoint is no longer
ordered, its claims do not ask (what waited goes at once).
"""

from collections import Counter
from datetime import datetime

from django.db import connection

from deliveries.models import Delivery, DeliveryStatus, KeySequence
from ground.db import bound_cursor
from subscriptions.models import Endpoint


def numbers(keys: list[tuple[str, str | None]], *, now: datetime) -> list[int | None]:
    """For each (endpoint, key) of a delivery, in publishing order: its number (None without a key). Inside the
    publishing transaction; pass keys only for ordered endpoints."""
    counts: Counter[tuple[str, str]] = Counter((endpoint_id, key) for endpoint_id, key in keys if key is not None)
    if not counts:
        return [None] * len(keys)
    last = _take(counts, now)
    given = {pair: last[pair] - count for pair, count in counts.items()}  # the number before the first
    result: list[int | None] = []
    for endpoint_id, key in keys:
        if key is None:
            result.append(None)
            continue
        given[endpoint_id, key] += 1
        result.append(given[endpoint_id, key])
    return result


def number(deliveries: list[Delivery], *, ordered: frozenset[str], now: datetime) -> None:
    """Give the deliveries (of one event, or several in publishing order) to ordered endpoints their event's
    key and their number."""
    keys = [
        (delivery.endpoint_id, delivery.event.ordering_key if delivery.endpoint_id in ordered else None)
        for delivery in deliveries
    ]
    for delivery, (_, key), sequence in zip(deliveries, keys, numbers(keys, now=now), strict=True):
        delivery.ordering_key, delivery.sequence = key, sequence


def _take(counts: Counter[tuple[str, str]], now: datetime) -> dict[tuple[str, str], int]:
    """Add ``counts`` to the pairs' last numbers (one upsert; rows in one order, so two publishers of the same
    keys never wait for each other in a circle); the new last numbers."""
    quote = connection.ops.quote_name
    table = quote(KeySequence._meta.db_table)
    pairs = sorted(counts)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(pairs))
    sql = (
        f"INSERT INTO {table} (endpoint_id, {quote('key')}, {quote('last')}, updated_at) VALUES {rows} "  # noqa: S608
        f"ON CONFLICT (endpoint_id, {quote('key')}) DO UPDATE SET {quote('last')} = {table}.{quote('last')} "
        f"+ EXCLUDED.{quote('last')}, updated_at = EXCLUDED.updated_at "
        f"RETURNING endpoint_id, {quote('key')}, {quote('last')}"
    )
    adapted = connection.ops.adapt_datetimefield_value(now)
    params = [value for endpoint_id, key in pairs for value in (endpoint_id, key, counts[endpoint_id, key], adapted)]
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        return {(endpoint_id, key): last for endpoint_id, key, last in cursor.fetchall()}


def free_to_go_sql(alias: str) -> str:
    """A SQL condition on the delivery ``alias``: no delivery of its key holds it back (see the rule above), or
    its endpoint is no longer ordered. One parameter: now. Deliveries without a key pass at the first test."""
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    endpoints, endpoint_id = quote(Endpoint._meta.db_table), quote(Endpoint._meta.pk.column)
    return (
        f"({alias}.ordering_key IS NULL"  # noqa: S608 - identifiers only
        f" OR NOT EXISTS (SELECT 1 FROM {endpoints} o WHERE o.{endpoint_id} = {alias}.endpoint_id AND o.ordered)"
        f" OR NOT EXISTS (SELECT 1 FROM {table} ahead "
        f"WHERE ahead.endpoint_id = {alias}.endpoint_id AND ahead.ordering_key = {alias}.ordering_key "
        f"AND ahead.status = '{DeliveryStatus.PENDING.value}' AND ahead.id <> {alias}.id "
        f"AND (ahead.sequence < {alias}.sequence OR ahead.lease_until >= %s)))"
    )
