"""Waking the workers through PostgreSQL: ``NOTIFY`` when there is work, ``LISTEN`` in every worker process.

With ``WAKE_UP`` notify (the default on PostgreSQL) the publishing statement itself raises the
notification, so it is sent exactly when the event commits and costs no round trip; the
payload names the endpoints that got work, so the process that owns one claims it at once and
no owner has to poll for work published for it. A lost notification (a listener reconnecting)
only delays until the next sweep: the database stays the queue.

LISTEN needs a session of its own, so it does not work through a transaction-pooling proxy
(PgBouncer in transaction mode): there, set ``WEBHOOKHUB_WAKE_UP=broker``.
"""

from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import connection, connections

from ground.conf import setting

CHANNEL = "webhookhub_due"
_MAX_PAYLOAD = 7000  # PostgreSQL takes 8000 bytes; past this the payload is empty, meaning "any endpoint"


def notifying() -> bool:
    """Whether workers are woken by NOTIFY (else by the broker's doorbell)."""
    mode = setting("WAKE_UP")
    return mode == "notify" or (mode == "auto" and connection.vendor == "postgresql")


def payload(endpoint_ids: Iterable[str]) -> str:
    """The endpoints that got work, comma-separated; empty when there are too many to list (any endpoint)."""
    listed = ",".join(sorted(set(endpoint_ids)))
    return listed if len(listed) <= _MAX_PAYLOAD else ""


def endpoints_in(text: str) -> set[str] | None:
    """The endpoints a notification names; None for any endpoint."""
    return set(text.split(",")) if text else None


def notify(endpoint_ids: Iterable[str] = ()) -> None:
    """Wake every listening worker now (outside the publishing statement: a resend, a sweep)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload(endpoint_ids)])


def listening_connection() -> "psycopg.Connection[Any]":
    """A connection of its own (autocommit) that LISTENs on the channel, to the default database."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    return listener
