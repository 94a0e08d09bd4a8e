"""Several SQL statements in one round trip.

On PostgreSQL Django's cursor binds parameters on the client, so one ``execute`` may carry
several statements separated by semicolons: the server runs them in order, in the current
transaction, and the cursor is left on the last one's result. Elsewhere they run one by one.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

Statement = tuple[str, Sequence[Any]]


def execute_together(cursor: CursorWrapper, statements: Sequence[Statement]) -> None:
    """Run ``statements`` (SQL, parameters) in order; the cursor then holds the last one's result."""
    if connection.vendor != "postgresql":
        for sql, params in statements:
            cursor.execute(sql, params)
        return
    cursor.execute("; ".join(sql for sql, _ in statements), [value for _, params in statements for value in params])
    for _ in statements[1:]:
        cursor.nextset()


def relaxed_commit() -> list[Statement]:
    """For a transaction whose loss in a database crash the leases repair (a claim, a recording): its
    commit does not wait for the WAL to reach the disk (``synchronous_commit`` off, this transaction only).

    A crash of PostgreSQL itself (not a restart: that flushes everything) can forget the last
    fraction of a second of such commits. A forgotten claim or recording only means the
    delivery is sent again once its lease runs out, at least once as ever (receivers dedupe on
    ``webhook-id``). Publishing never uses this: an event accepted is on disk.
    Send it with any statement of the transaction (``execute_together``: no round trip of its own).
    """
    return [("SET LOCAL synchronous_commit TO OFF", ())] if connection.vendor == "postgresql" else []
