"""The delivery and event admins: read-only logs with attempts, resend and cancel actions, search."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from tests.factories import delivery_to, endpoint_for, failed_delivery, make_endpoint
from tests.support.db import db_state, delivery_state
from tests.support.sending import drain_due
from tests.support.write_only import HEADER_VALUE, TOKEN
from tests.web.admin.support import admin_url, messages_shown, shown_ids, staff_client, text
from tests.web.dashboard.support import keyed_deliveries

pytestmark = pytest.mark.django_db


def _pending(tenant, endpoint=None, **fields) -> Delivery:
    """A delivery of ``tenant`` (to ``endpoint_for(tenant)`` unless given), ``fields`` overriding its columns."""
    return delivery_to(endpoint or endpoint_for(tenant), **fields)


def _action(client, action: str, *deliveries):
    return client.post(
        admin_url("deliveries_delivery_changelist"),
        {"action": action, "_selected_action": [delivery.pk for delivery in deliveries]},
        follow=True,
    )


# --- read-only ---------------------------------------------------------------------------------------


def test_deliveries_cannot_be_added(tenant_admin, tenant):
    _pending(tenant)

    changelist = tenant_admin.get(admin_url("deliveries_delivery_changelist"))

    assert changelist.status_code == 200
    assert admin_url("deliveries_delivery_add") not in text(changelist)
    assert tenant_admin.get(admin_url("deliveries_delivery_add")).status_code == 403


def _with_attempt(tenant) -> Delivery:
    delivery = _pending(tenant)
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        duration_ms=42,
        status_code=503,
        request_headers={"Authorization": "Bearer ****0001", "X-Env": "****0004"},
        response_body="upstream down",
        outcome=AttemptOutcome.RETRY,
    )
    return delivery


def _assert_attempt_shown(html: str) -> None:
    assert "Bearer ****0001" in html and "****0004" in html
    assert "upstream down" in html
    assert re.search(r'<table class="attempt-table">.*<td>1</td>.*<td>503</td>', html, re.S)


def test_delivery_page_is_read_only_and_links_its_event(tenant_admin, tenant):
    delivery = _with_attempt(tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_change", delivery.pk))

    assert response.status_code == 200
    html = text(response)
    assert 'name="_save"' not in html
    event_url = reverse("admin:events_event_change", args=[delivery.event_id])
    assert f'<a href="{event_url}">{delivery.event_id}</a>' in html


def test_superuser_sees_the_attempts_with_masked_headers(superuser, tenant):
    delivery = _with_attempt(tenant)

    response = superuser.get(admin_url("deliveries_delivery_change", delivery.pk))

    assert response.status_code == 200
    assert 'name="_save"' not in text(response)
    _assert_attempt_shown(text(response))


def test_tenant_admin_sees_the_attempts_with_masked_headers(tenant_admin, tenant):
    delivery = _with_attempt(tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_change", delivery.pk))

    _assert_attempt_shown(text(response))


@pytest.mark.django_db(transaction=True)  # the worker records from its own connection
def test_a_real_attempt_is_shown_without_the_endpoints_secrets(tenant_admin, superuser, tenant, receiver):
    endpoint = make_endpoint(
        tenant, receiver.url(), auth_type="bearer", auth={"token": TOKEN}, custom_headers={"X-Env": HEADER_VALUE}
    ).endpoint
    send = tenant_admin.post(admin_url("subscriptions_endpoint_send_test", endpoint.pk), {"example": "webhook.test"})
    delivery = Delivery.objects.get(endpoint=endpoint)

    assert drain_due() == 1

    [arrived] = receiver.requests
    assert arrived.headers["authorization"] == f"Bearer {TOKEN}"
    assert arrived.headers["x-env"] == HEADER_VALUE
    result = text(tenant_admin.get(send["Location"]))
    assert '<td id="status-code">200</td>' in result
    assert '<pre id="response-body">ok</pre>' in result
    assert TOKEN not in result and HEADER_VALUE not in result
    for client in (tenant_admin, superuser):
        page = text(client.get(admin_url("deliveries_delivery_change", delivery.pk)))
        assert TOKEN not in page and HEADER_VALUE not in page
    page = text(superuser.get(admin_url("deliveries_delivery_change", delivery.pk)))
    assert "&quot;authorization&quot;: &quot;bearer ****0001&quot;" in page.lower()
    assert "&quot;x-env&quot;: &quot;****0004&quot;" in page.lower()


def test_delivery_change_and_delete_are_refused(tenant_admin, tenant):
    delivery = _pending(tenant)
    before = db_state()

    change = tenant_admin.post(admin_url("deliveries_delivery_change", delivery.pk), {"status": "succeeded"})
    delete = tenant_admin.post(admin_url("deliveries_delivery_delete", delivery.pk), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    assert db_state() == before


def test_search_by_event_id_finds_the_delivery(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    wanted, other = _pending(tenant, endpoint), _pending(tenant, endpoint)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"q": wanted.event_id})

    assert response.status_code == 200
    assert shown_ids(text(response), "deliveries_delivery") == {str(wanted.pk)}
    assert other.event_id not in text(response)


def test_search_by_another_tenants_event_id_finds_nothing(tenant_admin, other_tenant):
    theirs = _pending(other_tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"q": theirs.event_id})

    assert shown_ids(text(response), "deliveries_delivery") == set()


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ({"status": "bogus"}, False),  # a valid filter on a status no row has
        ({"o": "99"}, True),  # a sort column that does not exist is ignored
        ({"endpoint__tenant__id__exact": "x"}, True),  # the tenant filter is hidden (one tenant), its value ignored
    ],
)
def test_odd_changelist_parameters_still_list(tenant_admin, tenant, query, listed):
    delivery = _pending(tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), query)

    assert response.status_code == 200
    assert shown_ids(text(response), "deliveries_delivery") == ({str(delivery.pk)} if listed else set())


def test_a_search_with_a_nul_character_is_refused_with_a_message_and_lists_everything(tenant_admin, tenant):
    delivery = _pending(tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"q": "\x00"})

    assert response.status_code == 200
    assert messages_shown(response) == ["Null characters are not allowed."]
    assert shown_ids(text(response), "deliveries_delivery") == {str(delivery.pk)}


@pytest.mark.parametrize(
    "query",
    [{"created_at__gte": "not-a-date"}, {"nonsense": "1"}, {"created_at__year": "abc"}],
)
def test_changelist_parameters_it_cannot_apply_redirect_to_the_error_flag(tenant_admin, tenant, query):
    """Django's admin answers a lookup it cannot use (unknown field, unparsable value) with ``?e=1``."""
    _pending(tenant)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), query)

    assert response.status_code == 302
    assert response["Location"] == admin_url("deliveries_delivery_changelist") + "?e=1"


# --- ordering keys -----------------------------------------------------------------------------------


def _readonly(html: str, field: str) -> str:
    """What a read-only field of the change page shows."""
    found = re.search(rf'class="form-row field-{field}">.*?<div class="readonly">(.*?)</div>', html, re.S)
    assert found, f"no {field} on the page"
    return found.group(1)


def test_a_waiting_keyed_delivery_links_the_delivery_it_waits_behind(tenant_admin, tenant):
    first, second = keyed_deliveries(endpoint_for(tenant), "conv_1", 2)

    waiting = text(tenant_admin.get(admin_url("deliveries_delivery_change", second.pk)))
    head = text(tenant_admin.get(admin_url("deliveries_delivery_change", first.pk)))

    link = re.search(r'Waiting behind <a href="([^"]+)" id="waiting-behind">delivery (\d+)</a>', waiting)
    assert link and link.groups() == (admin_url("deliveries_delivery_change", first.pk), str(first.pk))
    assert tenant_admin.get(link.group(1)).status_code == 200
    assert (_readonly(waiting, "sequence"), _readonly(head, "sequence")) == ("2", "1")
    assert ">conv_1</a>" in _readonly(waiting, "key_link")
    assert "Waiting behind" not in head


def test_a_keyed_delivery_waits_no_more_once_the_one_before_it_was_cancelled(tenant_admin, tenant):
    first, second = keyed_deliveries(endpoint_for(tenant), "conv_1", 2)
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.CANCELLED, next_attempt_at=None)

    html = text(tenant_admin.get(admin_url("deliveries_delivery_change", second.pk)))

    assert "Waiting behind" not in html
    assert _readonly(html, "waiting_behind") == "-"


def test_the_key_of_a_delivery_links_to_that_endpoints_deliveries_with_the_key(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    first, second = keyed_deliveries(endpoint, "conv 1&2", 2)
    keyed_deliveries(endpoint, "conv_2", 1)
    keyed_deliveries(endpoint_for(tenant), "conv 1&2", 1)  # the same key to another endpoint

    html = text(tenant_admin.get(admin_url("deliveries_delivery_change", first.pk)))
    href = re.search(r'<a href="([^"]+)">conv 1&amp;2</a>', _readonly(html, "key_link")).group(1)

    listed = tenant_admin.get(href.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert shown_ids(text(listed), "deliveries_delivery") == {str(first.pk), str(second.pk)}


def test_the_delivery_list_shows_keys_and_numbers_and_searching_a_key_finds_its_deliveries(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    first, second = keyed_deliveries(endpoint, "conv_1", 2)
    keyed_deliveries(endpoint, "conv_10", 1)
    _pending(tenant, endpoint)  # no key

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"q": "conv_1"})

    assert shown_ids(text(response), "deliveries_delivery") == {str(first.pk), str(second.pk)}
    cells = re.findall(
        r'<td class="field-ordering_key">([^<]*)</td><td class="field-sequence">(\d+)</td>', text(response)
    )
    assert sorted(cells) == [("conv_1", "1"), ("conv_1", "2")]


@pytest.mark.parametrize(("keyed", "expected"), [("yes", "keyed"), ("no", "plain")])
def test_the_ordering_key_filter_lists_deliveries_with_or_without_a_key(tenant_admin, tenant, keyed, expected):
    endpoint = endpoint_for(tenant)
    made = {"keyed": keyed_deliveries(endpoint, "conv_1", 2), "plain": [_pending(tenant, endpoint)]}

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"keyed": keyed})

    assert shown_ids(text(response), "deliveries_delivery") == {str(d.pk) for d in made[expected]}


def test_searching_another_tenants_ordering_key_finds_nothing(tenant_admin, other_tenant):
    keyed_deliveries(endpoint_for(other_tenant), "conv_1", 2)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"q": "conv_1"})

    assert shown_ids(text(response), "deliveries_delivery") == set()


# --- actions -----------------------------------------------------------------------------------------


def test_resend_now_makes_a_failed_delivery_pending_again(tenant_admin, tenant):
    delivery = failed_delivery(tenant)

    response = _action(tenant_admin, "resend_now", delivery)

    assert "1 delivery(ies) will be sent again now." in messages_shown(response)
    state = delivery_state(delivery)
    assert (state.status, state.lease_until, state.completed_at) == (DeliveryStatus.PENDING, None, None)
    assert state.next_attempt_at <= timezone.now()
    assert delivery.event_id and delivery.attempt_count == 8  # the same event, its history kept


def test_resend_now_leaves_an_in_flight_delivery_alone(tenant_admin, tenant):
    delivery = _pending(tenant, lease_until=timezone.now() + timedelta(minutes=2), next_attempt_at=None)
    before = db_state()

    _action(tenant_admin, "resend_now", delivery)

    assert db_state() == before


def test_cancel_pending_cancels_only_pending_deliveries_not_in_flight(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    waiting = _pending(tenant, endpoint)
    lease_ran_out = _pending(tenant, endpoint, lease_until=timezone.now() - timedelta(minutes=1))
    in_flight = _pending(tenant, endpoint, lease_until=timezone.now() + timedelta(minutes=2))
    failed = failed_delivery(tenant, endpoint)
    untouched = {d.pk: delivery_state(d) for d in (in_flight, failed)}

    response = _action(tenant_admin, "cancel_pending", waiting, lease_ran_out, in_flight, failed)

    assert "Cancelled 2 pending delivery(ies)." in messages_shown(response)
    for delivery in (waiting, lease_ran_out):
        state = delivery_state(delivery)
        assert (state.status, state.next_attempt_at) == (DeliveryStatus.CANCELLED, None)
        assert state.completed_at is not None
        assert delivery.last_error == "Cancelled by an admin."
    assert {d.pk: delivery_state(d) for d in (in_flight, failed)} == untouched


@pytest.mark.parametrize("action", ["resend_now", "cancel_pending"])
def test_delivery_actions_are_refused_for_managers(tenant, action):
    delivery = _pending(tenant)
    manager = staff_client(tenant, Role.MANAGER)
    before = db_state()

    response = manager.post(
        admin_url("deliveries_delivery_changelist"), {"action": action, "_selected_action": [delivery.pk]}
    )

    assert response.status_code == 403
    assert db_state() == before


# --- events ------------------------------------------------------------------------------------------


def test_event_page_is_read_only(tenant_admin, tenant):
    delivery = _pending(tenant)

    response = tenant_admin.get(admin_url("events_event_change", delivery.event_id))

    assert response.status_code == 200
    assert 'name="_save"' not in text(response)
    assert delivery.event.body in text(response).replace("&quot;", '"')
    assert tenant_admin.get(admin_url("events_event_add")).status_code == 403


def test_superuser_event_page_lists_its_deliveries(superuser, tenant):
    delivery = _pending(tenant)

    response = superuser.get(admin_url("events_event_change", delivery.event_id))

    assert admin_url("deliveries_delivery_change", delivery.pk) in text(response)


def test_tenant_admin_event_page_lists_its_deliveries(tenant_admin, tenant):
    delivery = _pending(tenant)

    response = tenant_admin.get(admin_url("events_event_change", delivery.event_id))

    assert admin_url("deliveries_delivery_change", delivery.pk) in text(response)


def test_event_search_by_id(tenant_admin, tenant):
    wanted, other = _pending(tenant), _pending(tenant)

    response = tenant_admin.get(admin_url("events_event_changelist"), {"q": wanted.event_id})

    assert shown_ids(text(response), "events_event") == {wanted.event_id}
    assert other.event_id not in text(response)


def test_event_changes_are_refused(tenant_admin, tenant):
    delivery = _pending(tenant)
    before = db_state()

    change = tenant_admin.post(admin_url("events_event_change", delivery.event_id), {"source": "api"})
    delete = tenant_admin.post(admin_url("events_event_delete", delivery.event_id), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    assert db_state() == before


def test_event_page_shows_its_ordering_key_and_search_finds_events_by_key(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    first, second = keyed_deliveries(endpoint, "conv_1", 2)
    other = _pending(tenant, endpoint)

    page = text(tenant_admin.get(admin_url("events_event_change", first.event_id)))
    found = text(tenant_admin.get(admin_url("events_event_changelist"), {"q": "conv_1"}))

    assert _readonly(page, "ordering_key") == "conv_1"
    assert shown_ids(found, "events_event") == {first.event_id, second.event_id}
    assert other.event_id not in found
