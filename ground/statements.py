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
