"""Enabling a disabled endpoint from the admin: the change page's two buttons (after a test event, or forced), the
list's bulk action (each endpoint tested, one message each), and the change form's ``enabled`` box, which no longer
enables one. Real receivers on 127.0.0.1."""

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import Role
from deliveries.models import Attempt, Delivery, DeliveryStatus
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import disable_endpoint
from tests.factories import failing_for, make_endpoint
from tests.support.db import db_state
from tests.support.receiver import Reply
from tests.web.admin.support import admin_url, endpoint_form, form_errors, messages_shown, staff_client, text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_receivers")]

REASON = "No successful delivery for 5 days."


def _disabled(tenant, receiver, name: str = "orders") -> Endpoint:
    endpoint = make_endpoint(tenant, receiver.url(), name=name).endpoint
    failing_for(endpoint, timedelta(days=6))
    disable_endpoint(endpoint=endpoint, reason=REASON, notify=False)
    return Endpoint.objects.get(pk=endpoint.pk)


def _press(client, endpoint, *, force: bool = False):
    data = {"force": "1"} if force else {}
    return client.post(admin_url("subscriptions_endpoint_enable", endpoint.pk), data, follow=True)


def _enabled(endpoint) -> bool:
    return Endpoint.objects.get(pk=endpoint.pk).enabled


# --- the change page's buttons -------------------------------------------------------------------------


def test_a_disabled_endpoints_page_offers_both_buttons(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    html = text(tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)))

    assert f'action="{admin_url("subscriptions_endpoint_enable", endpoint.pk)}"' in html
    assert ">Enable (after a test event)</button>" in html
    assert '<input type="hidden" name="force" value="1"><button' in html
    assert ">Enable without testing (force)</button>" in html


def test_an_enabled_endpoints_page_offers_neither(tenant_admin, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url()).endpoint

    html = text(tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)))

    assert "Enable (after a test event)" not in html and "Enable without testing" not in html


def test_the_button_enables_a_working_endpoint_and_says_so(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    response = _press(tenant_admin, endpoint)

    assert response.redirect_chain == [(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]), 302)]
    assert messages_shown(response) == ["orders: the test event got HTTP 200; the endpoint is enabled."]
    assert _enabled(endpoint) is True
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since is None
    assert len(receiver.requests) == 1


def test_the_button_refuses_a_failing_endpoint_with_the_tests_answer(tenant_admin, tenant, receiver):
    receiver.default = Reply(status=500)
    endpoint = _disabled(tenant, receiver)

    response = _press(tenant_admin, endpoint)

    assert messages_shown(response) == [
        "orders: not enabled, the test event failed (HTTP 500). It stays disabled; fix it and try again, or use "
        '"Enable without testing (force)" on its page.'
    ]
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert (stored.enabled, stored.disabled_reason) == (False, REASON)
    [attempt] = Attempt.objects.filter(delivery__endpoint=endpoint)
    assert (attempt.status_code, attempt.delivery.status) == (500, DeliveryStatus.FAILED)


def test_the_button_shows_a_refused_connections_error(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    receiver.stop()

    response = _press(tenant_admin, endpoint)

    [message] = messages_shown(response)
    assert message.startswith("orders: not enabled, the test event failed (Connection refused by 127.0.0.1 port")
    assert _enabled(endpoint) is False


def test_the_force_button_enables_without_a_request(tenant_admin, tenant, receiver):
    receiver.default = Reply(status=500)
    endpoint = _disabled(tenant, receiver)

    response = _press(tenant_admin, endpoint, force=True)

    assert messages_shown(response) == ["orders: enabled without testing (forced)."]
    assert _enabled(endpoint) is True
    assert receiver.requests == []
    assert not Delivery.objects.exists()


def test_a_get_of_the_enable_url_changes_nothing(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    before = db_state()

    response = tenant_admin.get(admin_url("subscriptions_endpoint_enable", endpoint.pk))

    assert response.status_code == 302
    assert db_state() == before
    assert receiver.requests == []


# --- who may press them --------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (lambda tenant, other: staff_client(tenant, Role.MANAGER), 403),
        (lambda tenant, other: staff_client(tenant, Role.USER), 403),
        (lambda tenant, other: staff_client(other, Role.ADMIN), 404),
    ],
    ids=["manager", "user", "other tenant's admin"],
)
def test_others_cannot_press_them_and_no_test_is_sent(tenant, other_tenant, receiver, caller, status, force):
    endpoint = _disabled(tenant, receiver)
    client = caller(tenant, other_tenant)
    before = db_state()

    response = client.post(admin_url("subscriptions_endpoint_enable", endpoint.pk), {"force": "1"} if force else {})

    assert response.status_code == status
    assert db_state() == before
    assert receiver.requests == []


def test_anonymous_callers_go_to_the_login_page_and_nothing_is_sent(client, tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    response = client.post(admin_url("subscriptions_endpoint_enable", endpoint.pk), {"force": "1"})

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert _enabled(endpoint) is False
    assert receiver.requests == []


# --- the list's bulk action ----------------------------------------------------------------------------


def test_the_bulk_action_tests_each_endpoint_and_reports_each(tenant_admin, tenant, receiver):
    working = _disabled(tenant, receiver, name="working")
    receiver.responder = lambda request: Reply(status=502 if request.path == "/broken" else 200)
    broken = make_endpoint(tenant, receiver.url("/broken"), name="broken").endpoint
    disable_endpoint(endpoint=broken, reason=REASON, notify=False)
    already = make_endpoint(tenant, receiver.url("/already"), name="already").endpoint

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_changelist"),
        {"action": "enable", "_selected_action": [working.pk, broken.pk, already.pk]},
        follow=True,
    )

    assert sorted(messages_shown(response)) == sorted(
        [
            "working: the test event got HTTP 200; the endpoint is enabled.",
            "broken: not enabled, the test event failed (HTTP 502). It stays disabled; fix it and try again, or use "
            '"Enable without testing (force)" on its page.',
            "already: already enabled.",
        ]
    )
    assert (_enabled(working), _enabled(broken), _enabled(already)) == (True, False, True)
    assert sorted(request.path for request in receiver.requests) == ["/broken", "/hook"]


# --- the change form's enabled box ---------------------------------------------------------------------


def test_ticking_enabled_on_a_disabled_endpoint_is_a_form_error_and_saves_nothing(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)
    before = db_state()

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_change", endpoint.pk),
        endpoint_form(tenant, url=receiver.url(), name="renamed", enabled="on"),
    )

    assert response.status_code == 200
    [error] = form_errors(response)["enabled"]
    assert error.startswith('This endpoint is disabled: enable it with the "Enable (after a test event)" button')
    assert db_state() == before
    assert receiver.requests == []


def test_a_disabled_endpoint_can_still_be_edited_with_the_box_left_unticked(tenant_admin, tenant, receiver):
    endpoint = _disabled(tenant, receiver)

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_change", endpoint.pk),
        endpoint_form(tenant, url=receiver.url(), name="renamed", enabled=None),
    )

    assert response.status_code == 302
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert (stored.name, stored.enabled, stored.disabled_reason) == ("renamed", False, REASON)
