"""/api/v1/endpoints/: the delivery policy per endpoint (retry_schedule, auto_disable_after_seconds, timeout_s,
adaptive_concurrency): written, read back with the policy in force, refused by name when out of bounds."""

import pytest

from subscriptions.models import Endpoint
from tests.factories import URL, endpoint_for
from tests.support.db import db_state, rows
from tests.web.api.support import API, key_client

pytestmark = pytest.mark.django_db

POLICY = ("retry_schedule", "auto_disable_after_seconds", "adaptive_concurrency", "timeout_s")


def _snapshot() -> dict:
    return {**db_state(), "policy": rows(Endpoint, *POLICY)}


def _detail(endpoint_id: str) -> str:
    return f"{API}/endpoints/{endpoint_id}/"


def test_create_with_a_policy_stores_it_and_answers_it(admin):
    response = admin.post(
        API + "/endpoints/",
        {
            "url": URL,
            "retry_schedule": [10, 60, 600],
            "auto_disable_after_seconds": 7200,
            "timeout_s": 3,
            "adaptive_concurrency": False,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert [getattr(endpoint, name) for name in POLICY] == [[10, 60, 600], 7200, False, 3.0]
    assert {name: body[name] for name in POLICY} == {
        "retry_schedule": [10, 60, 600],
        "auto_disable_after_seconds": 7200,
        "adaptive_concurrency": False,
        "timeout_s": 3.0,
    }
    assert body["effective_policy"] == {
        "retry_schedule": [10.0, 60.0, 600.0],
        "timeout_s": 3.0,
        "auto_disable_after_seconds": 7200,
    }


def test_without_a_policy_the_deployments_is_in_force(admin, settings):
    settings.WEBHOOKHUB = {
        **settings.WEBHOOKHUB,
        "RETRY_SCHEDULE": [5, 50],
        "TOTAL_TIMEOUT_SECONDS": 12.0,
        "AUTO_DISABLE_AFTER_SECONDS": 86400,
    }

    body = admin.post(API + "/endpoints/", {"url": URL}, format="json").json()

    assert (body["retry_schedule"], body["auto_disable_after_seconds"], body["adaptive_concurrency"]) == (
        None,
        None,
        True,
    )
    assert body["effective_policy"] == {
        "retry_schedule": [5.0, 50.0],
        "timeout_s": 12.0,
        "auto_disable_after_seconds": 86400,
    }


def test_patch_to_a_named_schedule_reads_back_with_its_delays(admin, tenant):
    endpoint = endpoint_for(tenant)

    response = admin.patch(_detail(endpoint.pk), {"retry_schedule": "quick"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["retry_schedule"] == "quick"
    assert Endpoint.objects.get(pk=endpoint.pk).retry_schedule == "quick"
    read = admin.get(_detail(endpoint.pk)).json()
    assert read["effective_policy"]["retry_schedule"] == [5.0, 30.0, 120.0, 600.0, 1800.0]


def test_patch_null_returns_to_the_deployments_policy(admin, tenant):
    endpoint = endpoint_for(tenant, retry_schedule=[10], auto_disable_after_seconds=7200)

    response = admin.patch(
        _detail(endpoint.pk), {"retry_schedule": None, "auto_disable_after_seconds": None}, format="json"
    )

    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds) == (None, None)


def test_the_issues_example_patch_now_changes_the_schedule(admin, tenant):
    endpoint = endpoint_for(tenant)

    response = admin.patch(_detail(endpoint.pk), {"retry_schedule": [1, 1, 1]}, format="json")

    assert response.status_code == 200
    assert Endpoint.objects.get(pk=endpoint.pk).retry_schedule == [1, 1, 1]


BAD = [
    ("retry_schedule", [0], "outside 1 to 86400 seconds"),
    ("retry_schedule", [1] * 21, "at most 20"),
    ("retry_schedule", [True], "is not a number of seconds"),
    ("retry_schedule", ["10"], "is not a number of seconds"),
    ("retry_schedule", "slowest", "Unknown schedule 'slowest'; the schedules are: patient, quick, standard."),
    ("retry_schedule", {"a": 1}, "Give a list of seconds"),
    ("retry_schedule", 60, "Give a list of seconds"),
    ("auto_disable_after_seconds", 60, "from 3600 (1 h) to 2592000 (30 d)"),
    ("auto_disable_after_seconds", 10**9, "from 3600 (1 h) to 2592000 (30 d)"),
    ("auto_disable_after_seconds", "soon", "A valid integer is required."),
    ("auto_disable_after_seconds", True, "A valid integer is required."),
    ("timeout_s", 0, "between 0 and 60"),
    ("timeout_s", 61, "between 0 and 60"),
    ("adaptive_concurrency", "maybe", "Must be a valid boolean."),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_a_bad_policy_on_create_is_refused_by_name_and_nothing_is_written(admin, field, value, message):
    before = _snapshot()

    response = admin.post(API + "/endpoints/", {"url": URL, field: value}, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert _snapshot() == before


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_a_bad_policy_on_patch_is_refused_by_name_and_nothing_changes(admin, tenant, field, value, message):
    endpoint = endpoint_for(tenant, retry_schedule=[10], auto_disable_after_seconds=7200)
    before = _snapshot()

    response = admin.patch(_detail(endpoint.pk), {"name": "renamed", field: value}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert message in response.json()["errors"][field][0]
    assert _snapshot() == before


@pytest.mark.parametrize("role", ["manager", "user"])
def test_other_roles_cannot_change_the_policy(tenant, role):
    endpoint, client = endpoint_for(tenant), key_client(tenant, role)
    before = _snapshot()

    response = client.patch(_detail(endpoint.pk), {"retry_schedule": [1]}, format="json")

    assert response.status_code == 403
    assert _snapshot() == before


def test_another_tenants_admin_cannot_change_the_policy(tenant, other_tenant):
    endpoint, client = endpoint_for(tenant), key_client(other_tenant)
    before = _snapshot()

    response = client.patch(_detail(endpoint.pk), {"retry_schedule": [1]}, format="json")

    assert response.status_code == 404
    assert _snapshot() == before


def test_the_schema_describes_a_retry_schedule_as_a_list_or_a_named_schedule(admin):
    schema = admin.get(API + "/schema/?format=json").json()

    field = schema["components"]["schemas"]["EndpointWriteRequest"]["properties"]["retry_schedule"]
    delays, named = field["oneOf"]
    assert delays["type"] == "array" and delays["maxItems"] == 20
    assert delays["items"] == {"type": "number", "minimum": 1, "maximum": 86400}
    assert named == {
        "type": "string",
        "description": "An operator-defined schedule.",
        "enum": ["patient", "quick", "standard"],
    }
    assert field["nullable"] is True
