"""Waking the workers through PostgreSQL: ``NOTIFY`` when there is work, ``LISTEN`` in every worker process.

With ``WAKE_UP`` notify (the default on PostgreSQL) the publishing statement itself raises the
notification, so it is sent exactly when the event commits and costs no round trip; the
payload names the endpoints that got work, each with its live owner: that owner claims them at
once (no owner polls for work published for it) and every other process lets them be; work with
no owner is claimed by whoever gets there first. A lost notification (a listener reconnecting)
only delays until the next sweep: the database stays the queue.

LISTEN needs a session of its own, so it does not work through a transaction-pooling proxy
(PgBouncer in transaction mode): there, set ``WEBHOOKHUB_WAKE_UP=broker``.
"""

from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import connection, connections

from deliveries.models import EndpointSchedule
from ground.conf import setting

CHANNEL = "webhookhub_due"
_MAX_PAYLOAD = 7000  # PostgreSQL takes 8000 bytes; past this the payload is empty, meaning "any endpoint"


def notifying() -> bool:
    """Whether workers are woken by NOTIFY (else by the broker's doorbell)."""
    mode = setting("WAKE_UP")
    return mode == "notify" or (mode == "auto" and connection.vendor == "postgresql")


def notification_sql() -> str:
    """An SQL expression that raises the notification for the endpoints in its one parameter (a ``text[]``).

    The payload names each endpoint with its live owner as this statement sees it
    (``endpoint=owner,...``; ``endpoint=`` when it has none), so only that owner claims it and
    every other process ignores it; empty when too long (any endpoint, every process claims).
    """
    schedules = connection.ops.quote_name(EndpointSchedule._meta.db_table)
    owner = "CASE WHEN s.owned_until >= now() THEN s.owner ELSE '' END"
    named = (
        f"SELECT string_agg(e.id || '=' || {owner}, ',' ORDER BY e.id) AS text "  # noqa: S608 - identifiers only
        f"FROM unnest(%s::text[]) AS e(id) LEFT JOIN {schedules} s ON s.endpoint_id = e.id"
    )
    return (
        f"pg_notify('{CHANNEL}', (SELECT CASE WHEN length(n.text) <= {_MAX_PAYLOAD} THEN n.text ELSE '' END "  # noqa: S608
        f"FROM ({named}) AS n))"
    )


def to_claim(payloads: Iterable[str], *, owner: str) -> list[str] | None:
    """What a process that heard these notifications claims: the endpoints named as its own or as
    nobody's (maybe none: all are other processes'), or None for any endpoint (a notification named none)."""
    endpoints: set[str] = set()
    for text in payloads:
        if not text:
            return None
        for item in text.split(","):
            endpoint_id, _, named_owner = item.partition("=")
            if named_owner in ("", owner):
                endpoints.add(endpoint_id)
    return sorted(endpoints)


def notify(endpoint_ids: Iterable[str] = ()) -> None:
    """Wake the listening workers (sent when the transaction commits): the owners of these endpoints,
    or, with none named, every process."""
    with connection.cursor() as cursor:
        if endpoint_ids:
            cursor.execute(f"SELECT {notification_sql()}", [sorted(set(endpoint_ids))])
        else:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def listening_connection() -> "psycopg.Connection[Any]":
    """A connection of its own (autocommit) that LISTENs on the channel, to the default database."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # TCP keepalives: a connection that died silently (a host gone, a NAT that forgot it) is noticed and
    # reconnected within a minute instead of leaving the process deaf until the sweeps.
    for name, value in {
        "keepalives": 1,
        "keepalives_idle": 20,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }.items():
        params.setdefault(name, value)
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    return listener
