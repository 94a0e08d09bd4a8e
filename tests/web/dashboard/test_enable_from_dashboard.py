"""The dashboard's enable buttons go through the same test as the API and the admin. Real receivers on 127.0.0.1."""

import pytest

from accounts.models import Role
from deliveries.models import Delivery
from subscriptions.models import Endpoint
from subscriptions.services import ADMIN_DISABLED_REASON, disable_endpoint
from tests.factories import make_endpoint
from tests.support.db import db_state
from tests.support.receiver import Reply
from tests.web.admin.support import staff_client
from tests.web.dashboard.support import messages_shown, page, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_receivers")]


@pytest.fixture
def disabled(tenant, receiver) -> Endpoint:
    endpoint = make_endpoint(tenant, receiver.url(), name="orders").endpoint
    disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)
    return endpoint


def _toggle(client, endpoint, **extra):
    return client.post(url("endpoint_toggle", endpoint.pk), {"enabled": "1", **extra}, follow=True)


def test_a_disabled_endpoints_page_offers_both_buttons(disabled, tenant_admin):
    html = page(tenant_admin.get(url("endpoint", disabled.pk)))

    assert 'id="enable"' in html and ">Enable (after a test event)</button>" in html
    assert 'id="enable-force"' in html and ">Enable without testing (force)</button>" in html


def test_enabling_a_working_endpoint_after_its_test(disabled, tenant_admin, receiver):
    response = _toggle(tenant_admin, disabled)

    assert messages_shown(response) == ["Endpoint enabled: the test event got HTTP 200."]
    assert Endpoint.objects.get(pk=disabled.pk).enabled is True
    assert len(receiver.requests) == 1
    assert 'id="disable"' in page(response)


def test_a_failing_endpoint_stays_disabled_and_the_page_says_why(disabled, tenant_admin, receiver):
    receiver.default = Reply(status=500)

    response = _toggle(tenant_admin, disabled)

    assert messages_shown(response) == [
        "Not enabled: the test event failed (HTTP 500). The endpoint stays disabled; fix it and try again, or use "
        '"Enable without testing (force)".'
    ]
    stored = Endpoint.objects.get(pk=disabled.pk)
    assert (stored.enabled, stored.disabled_reason) == (False, ADMIN_DISABLED_REASON)
    assert Delivery.objects.get(endpoint=disabled).attempts.get().status_code == 500


def test_the_force_button_enables_without_a_request(disabled, tenant_admin, receiver):
    receiver.default = Reply(status=500)

    response = _toggle(tenant_admin, disabled, force="1")

    assert messages_shown(response) == ["Endpoint enabled: without a test (forced)."]
    assert Endpoint.objects.get(pk=disabled.pk).enabled is True
    assert receiver.requests == []


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_managers_and_users_cannot_enable_and_no_test_is_sent(disabled, tenant, receiver, role):
    client = staff_client(tenant, role)
    before = db_state()

    response = client.post(url("endpoint_toggle", disabled.pk), {"enabled": "1"})

    assert response.status_code == 403
    assert db_state() == before
    assert receiver.requests == []


def test_another_tenants_admin_cannot_enable_and_no_test_is_sent(disabled, other_admin, receiver):
    before = db_state()

    response = other_admin.post(url("endpoint_toggle", disabled.pk), {"enabled": "1", "force": "1"})

    assert response.status_code == 404
    assert db_state() == before
    assert receiver.requests == []
