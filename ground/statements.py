"""Several SQL statements in one round trip.

On PostgreSQL each statement is bound on the client on its own (psycopg caches the parsing
of a short statement's text; one long joined text would be parsed again on every call) and
the bound statements go to the server as one text: it runs them in order and each one's
result comes back. Outside a transaction the server runs such a text as one transaction of
its own (PostgreSQL's "multiple statements in a simple query"), so ``execute_atomically``
costs one round trip in all: no BEGIN and COMMIT of their own. Elsewhere they run one by one.

A ``check`` is a statement that fails the whole text (so nothing of it is written) unless a
condition holds, for a caller that decides in advance and would have decided otherwise had it
known: it then catches ``CheckFailed`` and takes its slower path.
"""

from collections.abc import Sequence
from typing import Any

from django.db import DataError, connection, transaction

Statement = tuple[str, Sequence[Any]]

_CHECK_FAILED = "webhookhub: check failed: "


class CheckFailed(Exception):
    """A ``check`` of ``execute_atomically``'s statements did not hold: nothing was written."""


def execute_together(statements: Sequence[Statement | None]) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` (SQL, parameters) in order, skipping None; each one's rows, [] for one that returns none
    (or was None)."""
    present = [statement for statement in statements if statement is not None]
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and present:
            cursor.execute("; ".join(cursor.mogrify(sql, params) for sql, params in present))
            for index in range(len(present)):
                if index:
                    cursor.nextset()
                results.append(cursor.fetchall() if cursor.description is not None else [])
        else:
            for sql, params in present:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description is not None else [])
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
