"""Round trips to PostgreSQL, counted from libpq's trace of the protocol: each simple query (``Query``) and
each sync of the extended protocol (``Sync``, one per pipeline) is one wait for the server."""

import tempfile
from collections.abc import Callable
from typing import Any

from django.db import connection
from psycopg import pq


def round_trips(call: Callable[[], Any]) -> int:
    """How many times ``call`` waited for PostgreSQL on this thread's default connection."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            call()
        finally:
            pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t")[2].strip() for line in trace.read().decode(errors="replace").splitlines()]
    return sum(message in ("Query", "Sync") for message in sent)
