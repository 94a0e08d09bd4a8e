"""The endpoint admin's scheduling column (the list) and "scheduling now" line (the change page): what holds an
endpoint back (disabled, an open circuit, a pause) first, else its adaptive limit in words."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from deliveries.adaptive import START_LIMIT
from deliveries.models import EndpointSchedule
from subscriptions.models import Endpoint
from subscriptions.services import disable_endpoint
from tests.factories import endpoint_for
from tests.web.admin.support import admin_url, staff_client, text

pytestmark = pytest.mark.django_db


def _column(client, endpoint) -> str:
    """The endpoint's cell in the list's scheduling column, as text."""
    listing = text(client.get(admin_url("subscriptions_endpoint_changelist")))
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?{re.escape(endpoint.url)}(?:(?!</tr>).)*</tr>", listing, re.S)
    assert row, "the endpoint is not listed"
    cell = re.search(r'<td class="field-scheduling_now">(.*?)</td>', row.group(0), re.S)
    assert cell, "no scheduling column"
    return html.unescape(cell.group(1)).strip()


def _scheduling_line(client, endpoint) -> str:
    page = text(client.get(admin_url("subscriptions_endpoint_change", endpoint.pk)))
    found = re.search(r'field-scheduling\b.*?<div class="readonly">(.*?)</div>', page, re.S)
    assert found, "no scheduling-now line"
    return html.unescape(found.group(1)).strip()


@pytest.mark.parametrize(
    ("limit", "limited_by", "limited_at", "shown"),
    [
        (6, "429", 7, "sending 6 at a time, limited by: 429s at 7"),
        (3, "latency", 9, "sending 3 at a time, limited by: slow answers at 9"),
        (8, "", None, "sending up to 8 at a time (its ceiling)"),
        (4, "", None, "ramping up: 4 at a time of up to 8"),
        (None, "", None, f"starts at {START_LIMIT} at a time, up to 8"),
    ],
)
def test_the_list_shows_the_adaptive_limit(tenant_admin, tenant, limit, limited_by, limited_at, shown):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        concurrency_limit=limit,
        concurrency_limited_by=limited_by,
        concurrency_limited_at=limited_at,
    )

    assert _column(tenant_admin, endpoint) == shown


def test_the_list_shows_a_fixed_limit(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    Endpoint.objects.filter(pk=endpoint.pk).update(adaptive_concurrency=False)

    assert _column(tenant_admin, endpoint) == "up to 8 at a time (fixed)"


def test_the_list_shows_an_open_circuit_and_its_next_probe(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    opened = timezone.now() - timedelta(minutes=4)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        circuit_opened_at=opened,
        next_probe_at=opened + timedelta(minutes=5),
        concurrency_limit=1,
        concurrency_limited_by="refused",
    )

    assert _column(tenant_admin, endpoint) == (
        f"circuit open since {opened:%Y-%m-%d %H:%M} UTC, next probe {opened + timedelta(minutes=5):%H:%M:%S} UTC"
    )


def test_the_list_shows_a_pause_with_its_reason_while_it_lasts(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    until = timezone.now() + timedelta(minutes=2)
    EndpointSchedule.objects.create(endpoint=endpoint, paused_until=until, pause_reason="Retry-After: 120")
    paused = _column(tenant_admin, endpoint)
    EndpointSchedule.objects.filter(endpoint=endpoint).update(paused_until=timezone.now() - timedelta(seconds=1))

    assert paused == f"paused until {until:%H:%M:%S} UTC (Retry-After: 120)"
    assert _column(tenant_admin, endpoint) == f"starts at {START_LIMIT} at a time, up to 8"


def test_the_list_says_a_disabled_endpoint_is_not_sending(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=4)
    disable_endpoint(endpoint=endpoint, reason="Disabled by an admin.", notify=False)

    assert _column(tenant_admin, endpoint) == "disabled"


def test_the_change_page_shows_the_circuit_first_then_the_adaptive_limit(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    opened = timezone.now().replace(microsecond=0) - timedelta(minutes=4)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        circuit_opened_at=opened,
        concurrency_limit=2,
        concurrency_limited_by="timeout",
        concurrency_limited_at=5,
    )

    line = _scheduling_line(tenant_admin, endpoint)

    assert line == (
        f"circuit open since {opened:%Y-%m-%d %H:%M:%S} UTC; 0 being sent, 0 pending; "
        "sending 2 at a time, limited by: timeouts at 5"
    )


def test_another_tenants_admin_does_not_see_the_limit(tenant, other_tenant):
    endpoint = endpoint_for(tenant, name="elsewhere")
    EndpointSchedule.objects.create(
        endpoint=endpoint, concurrency_limit=6, concurrency_limited_by="429", concurrency_limited_at=7
    )

    listing = text(staff_client(other_tenant, Role.ADMIN).get(admin_url("subscriptions_endpoint_changelist")))

    assert "limited by: 429s at 7" not in listing and "elsewhere" not in listing
