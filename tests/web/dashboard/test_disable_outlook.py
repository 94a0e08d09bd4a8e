"""The endpoint page tells a tenant admin when a failing endpoint will be disabled unless it answers."""

from datetime import timedelta

import pytest

from subscriptions.models import Endpoint
from subscriptions.services import disable_endpoint
from tests.factories import failing_for
from tests.web.dashboard.support import page, url

pytestmark = pytest.mark.django_db


def _outlook(client, endpoint) -> str | None:
    text = " ".join(page(client.get(url("endpoint", endpoint.pk))).split())
    start = text.find('id="disable-outlook"')
    return None if start == -1 else text[start : text.index("</p>", start)]


def test_a_failing_endpoint_says_when_it_will_be_disabled_and_when_admins_are_warned_next(endpoint, tenant_admin):
    health = failing_for(endpoint, timedelta(days=2, hours=20))  # the deployment's 5 days: 2 d 4 h left

    shown = _outlook(tenant_admin, endpoint)

    assert shown is not None
    assert "will be disabled in 2 d 4 h unless it answers" in shown
    assert f"Failing since {health.failing_since:%Y-%m-%d %H:%M} UTC" in shown
    assert f"({health.failing_since + timedelta(days=5):%Y-%m-%d %H:%M} UTC, after 5 days without a success)" in shown
    next_warning = health.failing_since + timedelta(days=4.5)
    assert f"e-mailed again at {next_warning:%Y-%m-%d %H:%M} UTC" in shown


def test_the_endpoints_own_period_counts(endpoint, tenant_admin):
    Endpoint.objects.filter(pk=endpoint.pk).update(auto_disable_after_seconds=5 * 3600)  # points 1, 2.5, 4.5 h
    health = failing_for(endpoint, timedelta(hours=2))

    shown = _outlook(tenant_admin, endpoint)

    assert shown is not None and "will be disabled in 3 h unless it answers" in shown
    assert "after 5 hours without a success" in shown
    assert f"e-mailed again at {health.failing_since + timedelta(hours=2.5):%Y-%m-%d %H:%M} UTC" in shown


def test_after_the_last_warning_no_next_one_is_announced(endpoint, tenant_admin):
    failing_for(endpoint, timedelta(days=4, hours=18))  # past 4.5 d, the last point

    shown = _outlook(tenant_admin, endpoint)

    assert shown is not None and "will be disabled in 6 h unless it answers" in shown
    assert "e-mailed again" not in shown


def test_a_healthy_or_disabled_endpoint_shows_no_countdown(endpoint, tenant_admin):
    assert _outlook(tenant_admin, endpoint) is None

    failing_for(endpoint, timedelta(days=1))
    disable_endpoint(endpoint=endpoint, reason="Disabled by an admin.", notify=False)

    assert _outlook(tenant_admin, endpoint) is None


def test_another_tenants_admin_sees_no_countdown(endpoint, other_admin):
    failing_for(endpoint, timedelta(days=1))

    response = other_admin.get(url("endpoint", endpoint.pk))

    assert response.status_code == 404
    assert "will be disabled" not in response.content.decode()
