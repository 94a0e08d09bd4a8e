"""Several SQL statements in one round trip.

On PostgreSQL the statements go to the server in one pipeline (psycopg's pipeline mode: all of
them sent, then one sync), each bound on the server (``ground.db.bound_cursor``), so each is
prepared once per connection and the server neither parses nor plans it again. Outside a
transaction the statements up to the sync run as one implicit transaction: all or nothing, so
``execute_atomically`` costs one round trip in all, with no BEGIN and COMMIT of their own.
Elsewhere they run one by one.

A ``check`` is a statement that fails the whole pipeline (so nothing of it is written) unless a
condition holds, for a caller that decides in advance and would have decided otherwise had it
known: it then catches ``CheckFailed`` and takes its slower path.
"""

from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from typing import Any

from django.db import DataError, connection, transaction

from ground.db import bound_cursor

Statement = tuple[str, Sequence[Any]]

_CHECK_FAILED = "webhookhub: check failed: "


class CheckFailed(Exception):
    """A ``check`` of ``execute_atomically``'s statements did not hold: nothing was written."""


def execute_together(statements: Sequence[Statement | None]) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` (SQL, parameters) in order, skipping None; each one's rows, [] for one that returns none
    (or was None)."""
    present = [statement for statement in statements if statement is not None]
    with ExitStack() as cursors_open:
        cursors = [cursors_open.enter_context(bound_cursor()) for _ in present]
        together = connection.vendor == "postgresql" and len(present) > 1
        # Leaving the pipeline sends one sync and reads every answer; it raises the first error, if any.
        with connection.wrap_database_errors, connection.connection.pipeline() if together else nullcontext():
            for cursor, (sql, params) in zip(cursors, present, strict=True):
                cursor.execute(sql, params)
        results = [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    found = iter(results)
    return [next(found) if statement is not None else [] for statement in statements]


def execute_atomically(statements: Sequence[Statement | None]) -> list[list[tuple[Any, ...]]]:
    """``execute_together``, all or nothing; raises ``CheckFailed`` (having written nothing) if a check failed.

    On PostgreSQL outside a transaction: one round trip in all. Inside a caller's transaction: in a savepoint.
    """
    try:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            return execute_together(statements)
        with transaction.atomic():
            return execute_together(statements)
    except DataError as exc:
        if _CHECK_FAILED in str(exc):
            raise CheckFailed(str(exc)) from exc
        raise


def check(condition: str, params: Sequence[Any], what: str, *, with_: str = "") -> Statement:
    """A statement (PostgreSQL) that fails, naming ``what``, unless ``condition`` (SQL, with ``params``) is true;
    ``with_`` is a ``WITH`` clause the condition may read (with its parameters first in ``params``)."""
    # SQL has no RAISE outside PL/pgSQL: a text that is not a number fails its cast, with the text in the message.
    sql = f"{with_} SELECT CAST(CASE WHEN {condition} THEN '0' ELSE %s END AS integer)"
    return sql.strip(), [*params, _CHECK_FAILED + what]
