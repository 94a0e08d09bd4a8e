"""Several SQL statements in one round trip.

On PostgreSQL each statement is bound on the client on its own (psycopg caches the parsing
of a short statement's text; one long joined text would be parsed again on every call) and
the bound statements go to the server as one text: it runs them in order, in the current
transaction, and each one's result comes back. Elsewhere they run one by one.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

Statement = tuple[str, Sequence[Any]]


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
