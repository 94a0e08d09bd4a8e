"""A connection the database dropped (a restart, a failover) is replaced, not reused until the process restarts."""

import psycopg
import pytest
from django.db import connection

from ground.db import DATABASE_UNAVAILABLE, database_reachable, refresh_connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a server that drops connections: PostgreSQL"),
]


@pytest.fixture(autouse=True)
def healthy_connection_afterwards():
    yield
    refresh_connections()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    """What a PostgreSQL restart does to every open connection."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_connection_that_failed_a_query_is_replaced(settings):
    old = _backend_pid()
    _terminate(old)
    with pytest.raises(DATABASE_UNAVAILABLE):
        _backend_pid()

    refresh_connections()

    assert _backend_pid() != old


def test_a_connection_dropped_while_idle_is_replaced_before_the_next_query():
    old = _backend_pid()
    _terminate(old)

    refresh_connections()  # nothing failed yet: the next query checks the connection first

    assert _backend_pid() != old


def test_reachable_reopens_a_dropped_connection():
    old = _backend_pid()
    _terminate(old)

    assert database_reachable() is True
    assert _backend_pid() != old


def test_without_a_health_check_a_dropped_connection_fails_once_and_is_then_replaced():
    """The worker's threads skip the check (a round trip per unit of work) and retry what fails."""
    old = _backend_pid()
    _terminate(old)

    refresh_connections(health_check=False)
    with pytest.raises(DATABASE_UNAVAILABLE):  # not checked first (compare the test above): the query finds out
        _backend_pid()
    refresh_connections(health_check=False)  # the failure marked it: this refresh replaces it

    assert _backend_pid() != old
