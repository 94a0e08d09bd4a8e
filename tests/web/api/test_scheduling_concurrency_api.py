"""The API's ``scheduling`` object (endpoint detail and ``stats/``) shows the adaptive limit: structured fields
and the same words the admin and the dashboard show."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from deliveries.adaptive import START_LIMIT
from deliveries.models import Delivery, EndpointSchedule
from subscriptions.models import Endpoint
from tests.factories import delivery_to, endpoint_for
from tests.web.api.support import API, key_client

pytestmark = pytest.mark.django_db


def _detail(client, endpoint) -> dict:
    response = client.get(f"{API}/endpoints/{endpoint.pk}/")
    assert response.status_code == 200, response.content
    return response.json()["scheduling"]


def test_a_limited_endpoint_shows_its_limit_what_cut_it_and_where(admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=32)
    EndpointSchedule.objects.create(
        endpoint=endpoint, concurrency_limit=6, concurrency_limited_by="429", concurrency_limited_at=7
    )

    scheduling = _detail(admin, endpoint)

    assert {key: scheduling[key] for key in scheduling if key.startswith(("adaptive", "concurrency"))} == {
        "adaptive_concurrency": True,
        "concurrency_limit": 6,
        "concurrency_limited_by": "429",
        "concurrency_limited_at": 7,
        "concurrency": "sending 6 at a time, limited by: 429s at 7",
    }
    assert scheduling["summary"] == "0 being sent, 0 pending; sending 6 at a time, limited by: 429s at 7"


def test_an_endpoint_not_learnt_yet_shows_where_it_starts(admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)

    scheduling = _detail(admin, endpoint)

    assert (scheduling["concurrency_limit"], scheduling["concurrency_limited_by"]) == (None, "")
    assert scheduling["concurrency_limited_at"] is None
    assert scheduling["concurrency"] == f"starts at {START_LIMIT} at a time, up to 8"


def test_a_fixed_endpoint_shows_its_fixed_limit(admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    Endpoint.objects.filter(pk=endpoint.pk).update(adaptive_concurrency=False)

    scheduling = _detail(admin, endpoint)

    assert scheduling["adaptive_concurrency"] is False
    assert scheduling["concurrency"] == "up to 8 at a time (fixed)"


def test_the_summary_starts_with_an_open_circuit(admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    opened = timezone.now().replace(microsecond=0) - timedelta(minutes=3)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        down_in_a_row=5,
        circuit_opened_at=opened,
        concurrency_limit=1,
        concurrency_limited_by="refused",
        concurrency_limited_at=2,
    )
    Delivery.objects.filter(pk=delivery_to(endpoint).pk).update(attempt_count=2)

    scheduling = _detail(admin, endpoint)

    assert scheduling["summary"].startswith(f"circuit open since {opened:%Y-%m-%d %H:%M:%S} UTC")
    assert scheduling["summary"].endswith("; 0 being sent, 1 pending; " + scheduling["concurrency"])
    assert scheduling["concurrency"] == "sending 1 at a time, limited by: refused connections at 2"


def test_stats_show_the_same_scheduling_fields(admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=10)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=4)

    response = admin.get(f"{API}/endpoints/{endpoint.pk}/stats/")

    assert response.status_code == 200
    scheduling = response.json()["scheduling"]
    assert scheduling == _detail(admin, endpoint)
    assert scheduling["concurrency"] == "ramping up: 4 at a time of up to 10"


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_only_admins_read_the_scheduling(tenant, role):
    endpoint = endpoint_for(tenant)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=4, concurrency_limited_by="429")

    response = key_client(tenant, role).get(f"{API}/endpoints/{endpoint.pk}/")

    assert response.status_code == 403
    assert "concurrency" not in response.content.decode()


def test_another_tenants_admin_does_not_see_the_endpoint(other_tenant, tenant):
    endpoint = endpoint_for(tenant)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=4, concurrency_limited_by="429")

    response = key_client(other_tenant).get(f"{API}/endpoints/{endpoint.pk}/")

    assert response.status_code == 404
    assert "concurrency" not in response.content.decode()
