"""The endpoint change page's "failing since" line says when the endpoint will be disabled unless it answers."""

import re
from datetime import timedelta

import pytest

from subscriptions.models import Endpoint
from tests.factories import endpoint_for, failing_for
from tests.web.admin.support import admin_url

pytestmark = pytest.mark.django_db


def _failing_since_line(client, endpoint) -> str:
    content = client.get(admin_url("subscriptions_endpoint_change", endpoint.pk)).content.decode()
    found = re.search(r'field-failing_since\b.*?<div class="readonly">(.*?)</div>', content, re.S)
    assert found, "no failing-since line"
    return found.group(1).strip()


def test_the_change_page_says_when_a_failing_endpoint_will_be_disabled(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    Endpoint.objects.filter(pk=endpoint.pk).update(auto_disable_after_seconds=24 * 3600)
    health = failing_for(endpoint, timedelta(hours=6))
    disable_at = health.failing_since + timedelta(days=1)

    assert _failing_since_line(tenant_admin, endpoint) == (
        f"{health.failing_since:%Y-%m-%d %H:%M} UTC: will be disabled in 18 h unless it answers "
        f"({disable_at:%Y-%m-%d %H:%M} UTC)"
    )


def test_a_healthy_endpoint_has_no_countdown(tenant_admin, tenant):
    assert _failing_since_line(tenant_admin, endpoint_for(tenant)) == "-"
