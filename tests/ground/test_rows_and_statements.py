"""Hand-written statements: rows become model instances as the ORM builds them, and several statements
share one round trip with each one's result kept; the hot ones are prepared on the server."""

import pytest
from django.db import connection

from deliveries.models import EndpointSchedule
from ground import rows
from ground.db import bound_cursor
from ground.statements import execute_together
from subscriptions.models import Endpoint
from tests.factories import URL, make_endpoint
from tests.support.round_trips import round_trips

pytestmark = pytest.mark.django_db


def test_an_instance_from_columns_in_any_order_with_converters_applied(tenant):
    created = make_endpoint(tenant, URL, auth_type="bearer", auth={"token": "tok-6d1f"}, event_types=["chat.opened"])
    fields = [Endpoint._meta.get_field(name) for name in ("event_types", "auth", "url", "id")]  # not the model's order
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_types, auth, url, id FROM {Endpoint._meta.db_table} WHERE id = %s",  # noqa: S608
            [created.endpoint.pk],
        )
        [row] = cursor.fetchall()
    assert row[1] != {"token": "tok-6d1f"}  # stored encrypted

    loaded = rows.instance(Endpoint, fields, row)

    assert (loaded.pk, loaded.url) == (created.endpoint.pk, URL)
    assert loaded.auth == {"token": "tok-6d1f"}  # decrypted, as the ORM would
    assert loaded.event_types == ["chat.opened"]  # JSON decoded
    assert loaded.get_deferred_fields() >= {"name", "enabled"}  # what was not selected loads on demand
    assert loaded.enabled is True


def test_select_list_names_each_column_under_the_prefix():
    fields, select = rows.columns(EndpointSchedule, prefix="s", leave_out=["pause_reason"])
    assert [field.name for field in fields] == [
        field.name for field in EndpointSchedule._meta.concrete_fields if field.name != "pause_reason"
    ]
    assert select.startswith('s."endpoint_id", s."owner"')
    assert "pause_reason" not in select


def test_statements_together_keep_each_result_and_skip_none(tenant):
    endpoint = make_endpoint(tenant, URL).endpoint
    table = Endpoint._meta.db_table
    tricky = "50% off; it's 'quoted' %s"  # a value with what would look like SQL or a placeholder

    first, skipped, updated, second = execute_together(
        [
            (f"SELECT id, name FROM {table} WHERE id = %s", [endpoint.pk]),  # noqa: S608
            None,
            (f"UPDATE {table} SET name = %s WHERE id = %s", [tricky, endpoint.pk]),  # noqa: S608
            (f"SELECT name FROM {table} WHERE id = %s", [endpoint.pk]),  # noqa: S608
        ]
    )

    assert first == [(endpoint.pk, "")]
    assert skipped == []
    assert updated == []
    assert second == [(tricky,)]
    endpoint.refresh_from_db()
    assert endpoint.name == tricky


@pytest.mark.django_db(transaction=True)
def test_statements_together_are_one_pipeline_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("elsewhere they run one by one")
    alone = [execute_together([("SELECT txid_current()", [])])[0][0][0] for _ in range(2)]

    together: list = []
    trips = round_trips(lambda: together.extend(execute_together([("SELECT txid_current()", [])] * 3)))

    assert trips == 1
    assert alone[0] != alone[1]  # outside a transaction, each statement sent alone is a transaction of its own
    assert len({rows[0][0] for rows in together}) == 1  # sent together and synced once: one implicit transaction


@pytest.mark.django_db(transaction=True)
def test_a_hot_statement_is_prepared_on_the_server_after_its_fifth_run(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL prepares statements")
    sql = f"SELECT count(*) FROM {Endpoint._meta.db_table} WHERE tenant_id = %s"  # noqa: S608
    prepared = "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s"

    def is_prepared() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(prepared, [f"%FROM {Endpoint._meta.db_table} WHERE tenant_id = $1%"])
            return bool(cursor.fetchall())

    for _ in range(5):
        with bound_cursor() as cursor:
            cursor.execute(sql, [tenant.pk])
    before = is_prepared()
    with bound_cursor() as cursor:
        cursor.execute(sql, [tenant.pk])
        assert cursor.fetchall() == [(0,)]

    assert not before
    assert is_prepared()
    with connection.cursor() as cursor:  # Django's own cursors bind on the client: never prepared
        for _ in range(10):
            cursor.execute(f"SELECT count(*) FROM {EndpointSchedule._meta.db_table} WHERE owner = %s", ["x"])  # noqa: S608
        cursor.execute(prepared, [f"%FROM {EndpointSchedule._meta.db_table}%"])
        assert cursor.fetchall() == []
