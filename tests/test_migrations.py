"""Migrations that move data keep it, both ways."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_ONE_HEALTH_RECORD = [("deliveries", "0008_attempt_request_made"), ("subscriptions", "0003_labels")]
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def at_the_end():
    """Whatever a test migrates to, the schema is back at the latest migrations afterwards."""
    yield
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_health_rows_and_the_failing_clock_become_one_record_and_back(at_the_end):
    apps = _migrate(BEFORE_ONE_HEALTH_RECORD)
    tenant = apps.get_model("accounts", "Tenant").objects.create(slug="t1", name="T1")
    endpoint = apps.get_model("subscriptions", "Endpoint")
    failing = endpoint.objects.create(id="ep_1", tenant=tenant, url="https://93.184.216.34/a", failing_since=T0)
    healthy = endpoint.objects.create(id="ep_2", tenant=tenant, url="https://93.184.216.34/b")
    endpoint.objects.create(id="ep_3", tenant=tenant, url="https://93.184.216.34/c", failing_since=T0)
    old = apps.get_model("deliveries", "EndpointHealth")
    old.objects.create(endpoint=failing, last_attempt_at=T0, last_status_code=500, consecutive_failures=4)
    old.objects.create(endpoint=healthy, last_attempt_at=T0, last_status_code=200, last_success_at=T0)

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = _migrate(latest)

    rows = apps.get_model("subscriptions", "EndpointHealth").objects.order_by("pk")
    assert list(rows.values_list("endpoint_id", "last_status_code", "failed_in_a_row", "failing_since")) == [
        ("ep_1", 500, 4, T0),
        ("ep_2", 200, 0, None),
        ("ep_3", None, 0, T0),  # a running clock without a health row keeps running
    ]

    apps = _migrate(BEFORE_ONE_HEALTH_RECORD)

    assert list(
        apps.get_model("deliveries", "EndpointHealth").objects.order_by("pk").values_list("pk", "consecutive_failures")
    ) == [
        ("ep_1", 4),
        ("ep_2", 0),
        ("ep_3", 0),
    ]
    assert list(
        apps.get_model("subscriptions", "Endpoint").objects.order_by("pk").values_list("pk", "failing_since")
    ) == [
        ("ep_1", T0),
        ("ep_2", None),
        ("ep_3", T0),
    ]
