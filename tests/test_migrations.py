"""Migrations that move data keep it, both ways."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Tenant
from tests.factories import make_endpoint

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


BEFORE_SIGNING_KEYS = [("subscriptions", "0009_endpoint_delivery_policy")]


@pytest.mark.django_db(transaction=True)
def test_endpoints_made_before_v1a_get_a_signing_key_of_their_own_and_keep_their_secret(at_the_end):
    import base64

    from nacl.signing import VerifyKey

    from deliveries.signing import sign
    from subscriptions.keys import public_key

    apps = _migrate(BEFORE_SIGNING_KEYS)
    tenant = apps.get_model("accounts", "Tenant").objects.create(slug="t1", name="T1")
    endpoint = apps.get_model("subscriptions", "Endpoint")
    old_secret = apps.get_model("subscriptions", "EndpointSecret")
    for pk in ("ep_1", "ep_2"):
        made = endpoint.objects.create(id=pk, tenant=tenant, url=f"https://93.184.216.34/{pk}")
        old_secret.objects.create(endpoint=made, secret=f"whsec_{pk}")

    apps = _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    rows = apps.get_model("subscriptions", "EndpointSecret").objects.order_by("endpoint_id", "scheme")
    by_endpoint = {}
    for row in rows:
        by_endpoint.setdefault(row.endpoint_id, {})[row.scheme] = row.secret
    assert {pk: sorted(schemes) for pk, schemes in by_endpoint.items()} == {
        "ep_1": ["v1", "v1a"],
        "ep_2": ["v1", "v1a"],
    }
    assert by_endpoint["ep_1"]["v1"] == "whsec_ep_1"  # the secret receivers hold is kept, as v1
    assert by_endpoint["ep_1"]["v1a"] != by_endpoint["ep_2"]["v1a"]
    assert apps.get_model("subscriptions", "Endpoint").objects.get(pk="ep_1").signature_scheme == "v1"
    key = by_endpoint["ep_1"]["v1a"]
    signature = sign(secret=key, msg_id="evt_1", timestamp=1, body=b"{}").removeprefix("v1a,")
    verify_key = VerifyKey(base64.b64decode(public_key(key).removeprefix("whpk_")))
    verify_key.verify(b"evt_1.1.{}", base64.b64decode(signature))  # raises if the key does not sign as v1a


@pytest.mark.django_db(transaction=True)
def test_back_before_v1a_the_signing_keys_go_and_the_secrets_stay(at_the_end):
    tenant = Tenant.objects.create(slug="t1", name="T1")
    made = make_endpoint(tenant, "https://93.184.216.34/hook")
    secret = made.endpoint.secrets.get(scheme="v1").secret

    apps = _migrate(BEFORE_SIGNING_KEYS)

    kept = apps.get_model("subscriptions", "EndpointSecret").objects.filter(endpoint_id=made.endpoint.pk)
    assert list(kept.values_list("secret", flat=True)) == [secret]
