"""Database connections in long-lived processes: drop the ones that went bad, as Django does per request.

Django refreshes connections around every web request. A Celery task, the recorder
thread or the sweeper ticker has no request, so each calls ``refresh_connections``
before (and tasks also after) a unit of work. A connection a PostgreSQL restart broke
is then closed and the next query opens a new one (``conn_health_checks`` in the
settings checks a reused connection once per unit of work), instead of failing
with "the connection is closed" until the process is restarted.

The worker's own threads claim and record many times a second and retry a unit of work
that met an unavailable database anyway, so they skip the check (``health_check=False``):
a connection that broke fails its first query, which marks it, and the next refresh
replaces it. That saves a round trip (``SELECT 1``) per claim and per recording.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from django.db import InterfaceError, OperationalError, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

# What a query raises while the database is down, restarting or unreachable. Retrying later helps.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def refresh_connections(*, health_check: bool = True) -> None:
    """Close this thread's connections that are broken or past ``CONN_MAX_AGE``; never one inside a transaction.

    ``health_check=False``: a connection that has raised no error is trusted without asking the server
    (the caller retries work that fails on a connection that broke meanwhile).
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            with suppress(*DATABASE_UNAVAILABLE):  # closing a broken connection may complain; it is closed anyway
                connection.close_if_unusable_or_obsolete()
            if not health_check and connection.connection is not None:
                connection.health_check_done = True  # type: ignore[attr-defined]  # Django 4.1+, not in the stubs


def database_reachable() -> bool:
    """Whether the database answers now, on this thread's default connection (reopened if it broke)."""
    connection = connections["default"]
    try:
        if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
            connection.close()
        connection.ensure_connection()
        return connection.is_usable()
    except DATABASE_UNAVAILABLE:
        return False


@contextmanager
def bound_cursor() -> Iterator[CursorWrapper]:
    """A cursor for the hot statements written once: on PostgreSQL its parameters travel apart from the text
    (server-side binding), so a connection prepares a statement it runs often (psycopg does after its fifth
    run, ``prepare_threshold`` in the settings) and PostgreSQL parses and plans it once per connection
    instead of at every run: that was half of the server's CPU for them. Django's own cursors bind on the
    client, and a statement bound on the client is never prepared.

    One statement per ``execute``; errors, query logging and execute wrappers are Django's, as with
    ``connection.cursor()``, which it is on other databases.
    """
    connection = connections["default"]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    with connection.wrap_database_errors:
        connection.ensure_connection()
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(psycopg.Cursor(connection.connection), connection) as cursor:
        yield cursor
