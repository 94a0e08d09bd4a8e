"""Hand-written statements: rows become model instances as the ORM builds them, and several statements
share one round trip with each one's result kept."""

import pytest
from django.db import connection

from deliveries.models import EndpointSchedule
from ground import rows
from ground.statements import execute_together
from subscriptions.models import Endpoint
from tests.factories import URL, make_endpoint

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


def test_statements_together_are_one_round_trip_on_postgresql(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("elsewhere they run one by one")
    table = Endpoint._meta.db_table
    sent = []

    def count(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        results = execute_together([(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant.pk])] * 3)  # noqa: S608

    assert len(sent) == 1
    assert results == [[(0,)]] * 3
