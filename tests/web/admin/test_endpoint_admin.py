"""The endpoint admin: the form (write-only secrets, validation), its actions and its own pages."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from deliveries.models import Attempt, AttemptOutcome, Delivery, EndpointSchedule
from events.catalog import CATALOG
from events.models import Event, EventType
from subscriptions.models import AuthType, Endpoint, EndpointSecret
from subscriptions.services import disable_endpoint, primary_secret, rotate_secret
from tests.factories import URL, endpoint_for, failing_for, make_endpoint
from tests.support.db import db_state
from tests.support.numbers import record_stats
from tests.support.write_only import HEADER_VALUE, KEY_VALUE, PASSWORD, TOKEN, assert_none_shown
from tests.web.admin.support import (
    admin_url,
    endpoint_form,
    form_errors,
    messages_shown,
    shown_ids,
    staff_client,
    text,
)

pytestmark = pytest.mark.django_db

EXAMPLES = {spec.name: spec.example for spec in CATALOG}
AUTH_FORMS = {
    "bearer": {"auth_type": "bearer", "auth_token": TOKEN},
    "api_key": {"auth_type": "api_key", "auth_header": "X-Api-Key", "auth_value": KEY_VALUE},
    "basic": {"auth_type": "basic", "auth_username": "hook-user", "auth_password": PASSWORD},
}
STORED_AUTH = {
    "bearer": {"token": TOKEN},
    "api_key": {"header": "X-Api-Key", "value": KEY_VALUE},
    "basic": {"username": "hook-user", "password": PASSWORD},
}
MASKS = {"bearer": "****0001", "api_key": "****0002", "basic": "****0003"}


def _raw_columns(endpoint_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT auth, custom_headers FROM {Endpoint._meta.db_table} WHERE id = %s",  # noqa: S608
            [endpoint_id],
        )
        return cursor.fetchone()


def _secured_endpoint(tenant, auth: str = "bearer") -> Endpoint:
    return endpoint_for(
        tenant,
        name="secured",
        auth_type=auth,
        auth=STORED_AUTH[auth],
        custom_headers={"X-Env": HEADER_VALUE},
    )


def _add(client, tenant, /, **fields):
    return client.post(admin_url("subscriptions_endpoint_add"), endpoint_form(tenant, **fields), follow=True)


def _change(client, endpoint, /, **fields):
    return client.post(
        admin_url("subscriptions_endpoint_change", endpoint.pk), endpoint_form(endpoint.tenant, **fields)
    )


def _action(client, action: str, *endpoints):
    return client.post(
        admin_url("subscriptions_endpoint_changelist"),
        {"action": action, "_selected_action": [endpoint.pk for endpoint in endpoints]},
        follow=True,
    )


# --- creating --------------------------------------------------------------------------------------


def test_create_with_bearer_auth_and_custom_header_goes_through_the_service(tenant_admin, tenant):
    response = _add(
        tenant_admin,
        tenant,
        event_types=["message.received", "chat.opened"],
        custom_headers_text=f"X-Env: {HEADER_VALUE}",
        timeout_s="7.5",
        rate_limit_per_s="20",
        filter='{"direction": "inbound"}',
        **AUTH_FORMS["bearer"],
    )

    assert response.status_code == 200
    [endpoint] = Endpoint.objects.filter(tenant=tenant)
    assert (endpoint.name, endpoint.url, endpoint.event_types) == ("orders", URL, ["message.received", "chat.opened"])
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.BEARER, {"token": TOKEN})
    assert endpoint.custom_headers == {"X-Env": HEADER_VALUE}
    assert (endpoint.timeout_s, endpoint.rate_limit_per_s, endpoint.filter) == (7.5, 20, {"direction": "inbound"})
    assert endpoint.enabled is True
    assert endpoint.created_by == tenant_admin.user
    [secret] = EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1")
    assert secret.secret.startswith("whsec_") and secret.expires_at is None
    raw_auth, raw_headers = _raw_columns(endpoint.pk)
    assert TOKEN not in raw_auth and "token" not in raw_auth
    assert HEADER_VALUE not in raw_headers and "X-Env" not in raw_headers


def test_create_shows_the_signing_secret_once(tenant_admin, tenant):
    response = _add(tenant_admin, tenant)

    secret = EndpointSecret.objects.get(endpoint__tenant=tenant, scheme="v1").secret
    assert any(secret in message for message in messages_shown(response))
    assert text(response).count(secret) == 1
    endpoint = Endpoint.objects.get(tenant=tenant)
    again = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk))
    assert again.status_code == 200
    assert secret not in text(again)
    assert "whsec_" not in text(again)


def test_create_is_listed_on_the_changelist(tenant_admin, tenant):
    _add(tenant_admin, tenant, name="listed")

    response = tenant_admin.get(admin_url("subscriptions_endpoint_changelist"))

    assert shown_ids(text(response), "subscriptions_endpoint") == {Endpoint.objects.get(tenant=tenant).pk}
    assert "<strong>listed</strong>" in text(response)  # the name, over its URL


def test_add_page_renders_with_the_catalog_choices(tenant_admin):
    response = tenant_admin.get(admin_url("subscriptions_endpoint_add"))

    assert response.status_code == 200
    html = text(response)
    for name in ["message.received", "webhook.test", "contact.opted_out"]:
        assert f'<option value="{name}">' in html
    assert '<option value="*">' in html


# --- the change page never shows secrets -------------------------------------------------------------


@pytest.mark.parametrize("auth", ["bearer", "api_key", "basic"])
def test_change_page_never_shows_stored_auth_or_header_values(tenant_admin, tenant, auth):
    endpoint = _secured_endpoint(tenant, auth)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk))

    assert response.status_code == 200
    html = text(response)
    assert_none_shown(html)
    assert f"Stored: {MASKS[auth]}. Leave blank to keep it." in html
    assert "Stored: X-Env: ****0004. Leave blank to keep them." in html
    assert primary_secret(endpoint) not in html


def test_changelist_never_shows_stored_auth_or_header_values(tenant_admin, tenant):
    for auth in STORED_AUTH:
        _secured_endpoint(tenant, auth)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_changelist"))

    assert response.status_code == 200
    assert_none_shown(text(response))


def test_form_error_page_does_not_echo_stored_values(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant)

    response = _change(tenant_admin, endpoint, url="ftp://93.184.216.34/x", auth_type="bearer")

    assert response.status_code == 200
    assert_none_shown(text(response))


def test_form_error_page_does_not_echo_a_typed_token(tenant_admin, tenant):
    response = _add(tenant_admin, tenant, url="ftp://93.184.216.34/x", auth_type="bearer", auth_token=TOKEN)

    assert response.status_code == 200
    assert TOKEN not in text(response)
    assert not Endpoint.objects.exists()


# --- changing ----------------------------------------------------------------------------------------


def test_blank_auth_and_header_fields_keep_the_stored_values(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant, "basic")

    response = _change(tenant_admin, endpoint, name="renamed", auth_type="basic", auth_username="hook-user")

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.name == "renamed"
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.BASIC, STORED_AUTH["basic"])
    assert endpoint.custom_headers == {"X-Env": HEADER_VALUE}


def test_a_new_token_replaces_the_stored_one(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant, "bearer")

    response = _change(tenant_admin, endpoint, auth_type="bearer", auth_token="tok-new-value-9999")

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.auth == {"token": "tok-new-value-9999"}
    assert TOKEN not in _raw_columns(endpoint.pk)[0]


def test_new_custom_headers_replace_the_stored_ones(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant)

    response = _change(tenant_admin, endpoint, auth_type="bearer", custom_headers_text="X-A: 1\r\nX-B: two words")

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.custom_headers == {"X-A": "1", "X-B": "two words"}


def test_clear_custom_headers_removes_them(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant)

    response = _change(tenant_admin, endpoint, auth_type="bearer", clear_custom_headers="on")

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.custom_headers == {}
    assert endpoint.auth == {"token": TOKEN}


def test_changing_the_auth_type_requires_new_values(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant, "bearer")
    before = db_state()

    response = _change(tenant_admin, endpoint, auth_type="basic")

    assert response.status_code == 200
    assert "basic auth needs a non-empty" in str(form_errors(response)["auth_type"])
    assert db_state() == before


def test_changing_the_auth_type_with_new_values_replaces_the_auth(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant, "bearer")

    response = _change(tenant_admin, endpoint, **AUTH_FORMS["api_key"])

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.API_KEY, STORED_AUTH["api_key"])


def test_changing_the_auth_type_to_none_removes_the_auth(tenant_admin, tenant):
    endpoint = _secured_endpoint(tenant, "bearer")

    response = _change(tenant_admin, endpoint, auth_type="none")

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.NONE, None)


def test_changing_event_types_url_and_limits(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = _change(
        tenant_admin,
        endpoint,
        url="https://93.184.216.34/other",
        event_types=["chat.closed"],
        timeout_s="60",
        rate_limit_per_s="100000",
        max_in_flight="3",
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types) == ("https://93.184.216.34/other", ["chat.closed"])
    assert (endpoint.timeout_s, endpoint.rate_limit_per_s, endpoint.max_in_flight) == (60.0, 100000, 3)


def test_ticking_ordered_delivery_stores_it_and_unticking_turns_it_off(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    ticked = _change(tenant_admin, endpoint, ordered="on")
    endpoint.refresh_from_db()
    ordered_after_ticking = endpoint.ordered
    unticked = _change(tenant_admin, endpoint)
    endpoint.refresh_from_db()

    assert (ticked.status_code, unticked.status_code) == (302, 302)
    assert (ordered_after_ticking, endpoint.ordered) == (True, False)


def test_an_endpoint_can_be_created_with_ordered_delivery(tenant_admin, tenant):
    _add(tenant_admin, tenant, ordered="on")

    assert Endpoint.objects.get(tenant=tenant).ordered is True


def test_the_change_page_shows_the_ordered_checkbox_with_what_it_does(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, ordered=True)

    html = text(tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)))

    assert re.search(r'<input type="checkbox" name="ordered" [^>]*checked', html)
    assert "Events with the same ordering key are sent one at a time, in publish order" in html


def test_max_in_flight_out_of_range_is_a_form_error_and_changes_nothing(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = _change(tenant_admin, endpoint, max_in_flight="500")

    assert response.status_code == 200
    assert "Give a whole number from 1 to 64." in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.max_in_flight == 8


def test_the_endpoint_page_shows_an_open_circuit(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    EndpointSchedule.objects.create(endpoint=endpoint, down_in_a_row=6, circuit_opened_at=timezone.now())

    page = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)).content.decode()
    listing = tenant_admin.get(admin_url("subscriptions_endpoint_changelist")).content.decode()

    assert "circuit open since" in page
    assert "circuit open since" in listing


def test_unticking_enabled_in_the_form_records_who_disabled_it(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = _change(tenant_admin, endpoint, enabled=None)

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_reason == "Disabled by an admin."
    assert endpoint.disabled_at is not None


def test_the_change_page_shows_since_when_the_endpoint_has_been_failing(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    assert (
        "Failing since:" in tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)).content.decode()
    )
    health = failing_for(endpoint, timedelta(days=2))

    page = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)).content.decode()

    assert f"{health.failing_since:%Y-%m-%d %H:%M} UTC" in page


def test_ticking_enabled_in_the_form_does_not_enable_a_disabled_endpoint(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    failing_for(endpoint, timedelta(days=6))
    disable_endpoint(endpoint=endpoint, reason="No successful delivery since ...", notify=False)
    before = db_state()

    response = _change(tenant_admin, endpoint, enabled="on")

    assert response.status_code == 200  # enabling is the page's buttons' job: a test event first
    assert "enabled" in form_errors(response)
    assert db_state() == before


# --- bad input: a readable form error, nothing written, never a 500 ------------------------------------

BAD_URLS = [
    ("not a url", "Enter a valid URL."),
    ("ftp://93.184.216.34/hook", "The URL must start with http:// or https://."),
    ("http://10.0.0.1/", "resolves to 10.0.0.1, which is not a public address."),
    ("http://127.0.0.1/", "resolves to 127.0.0.1, which is not a public address."),
    ("http://[::1]/", "resolves to ::1, which is not a public address."),
    ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254, which is not a public address."),
    ("https://user:pw@93.184.216.34/hook", "Put credentials in the endpoint"),
    ("", "This field is required."),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_url_on_add_is_a_readable_form_error(tenant_admin, tenant, no_private_networks, url, message):
    before = db_state()

    response = _add(tenant_admin, tenant, url=url)

    assert response.status_code == 200
    assert message in " ".join(form_errors(response)["url"])
    assert "errornote" in text(response)
    assert db_state() == before


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_url_on_change_is_a_readable_form_error(tenant_admin, tenant, no_private_networks, url, message):
    endpoint = endpoint_for(tenant)
    before = db_state()

    response = _change(tenant_admin, endpoint, url=url)

    assert response.status_code == 200
    assert message in " ".join(form_errors(response)["url"])
    assert db_state() == before


def test_private_url_is_accepted_when_its_network_is_allowed(tenant_admin, tenant, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"]}

    response = _add(tenant_admin, tenant, url="http://10.0.0.1/hook")

    assert response.status_code == 200
    assert Endpoint.objects.get(tenant=tenant).url == "http://10.0.0.1/hook"


BAD_FIELDS = [
    ({"custom_headers_text": "webhook-signature: v1,forged"}, "custom_headers_text", "cannot be overridden"),
    ({"custom_headers_text": "Content-Type: text/plain"}, "custom_headers_text", "cannot be overridden"),
    ({"custom_headers_text": "X-Env: a\rb"}, "custom_headers_text", "Line 2: write 'Name: value'."),
    ({"custom_headers_text": "X-Env value"}, "custom_headers_text", "Line 1: write 'Name: value'."),
    ({"custom_headers_text": "X Env: value"}, "custom_headers_text", "is not a valid header name."),
    ({"custom_headers_text": "X-Env: caf\u00e9 \u2603"}, "custom_headers_text", "must be ISO-8859-1 text."),
    ({"custom_headers_text": "X-Env: a\x00b"}, "custom_headers_text", "Null characters are not allowed."),
    ({"event_types": ["no.such_type"]}, "event_types", "Select a valid choice."),
    ({"event_types": []}, "event_types", "This field is required."),
    ({"event_types": ["*", "chat.opened"]}, "event_types", "already means every type"),
    ({"timeout_s": "0"}, "timeout_s", "between 0 and 60"),
    ({"timeout_s": "61"}, "timeout_s", "between 0 and 60"),
    ({"timeout_s": "-1"}, "timeout_s", "between 0 and 60"),
    ({"timeout_s": "soon"}, "timeout_s", "Enter a number."),
    ({"rate_limit_per_s": "0"}, "rate_limit_per_s", None),
    ({"rate_limit_per_s": "100001"}, "rate_limit_per_s", "from 1 to 100000"),
    ({"filter": "{"}, "filter", "Enter a valid JSON."),
    ({"filter": "[1, 2]"}, "filter", "A filter is an object"),
    ({"auth_type": "bearer", "auth_token": "to\nken"}, "auth_type", "must not contain control characters"),
    ({"auth_type": "basic", "auth_username": "a:b", "auth_password": "pw"}, "auth_type", "cannot contain ':'"),
    ({"auth_type": "api_key", "auth_header": "Host", "auth_value": "v"}, "auth_type", "cannot be overridden"),
    ({"auth_type": "api_key", "auth_header": "X-Key"}, "auth_type", "needs a non-empty 'value'"),
    ({"auth_type": "magic"}, "auth_type", "Select a valid choice."),
    ({"tenant": ""}, "tenant", "This field is required."),
    ({"tenant": "ten_nope"}, "tenant", "Select a valid choice."),
]


def test_a_new_bearer_endpoint_needs_a_token(tenant_admin, tenant):
    before = db_state()

    response = _add(tenant_admin, tenant, auth_type="bearer")

    assert response.status_code == 200
    assert form_errors(response)["auth_type"] == ["bearer auth needs a non-empty 'token'."]
    assert db_state() == before


def test_a_bare_carriage_return_separates_header_lines_like_a_newline(tenant_admin, tenant):
    """Browsers send textarea lines with CRLF; a lone CR is a line break too, never part of a header value."""
    response = _add(tenant_admin, tenant, custom_headers_text="X-Env: a\rX-Other: b\n\nX-Last: c")

    assert response.status_code == 200
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert endpoint.custom_headers == {"X-Env": "a", "X-Other": "b", "X-Last": "c"}


def _error_case_id(case) -> str:
    fields, field, _ = case
    return f"{field}-{'-'.join(str(v)[:12] for v in fields.values())}"


@pytest.mark.parametrize(("fields", "field", "message"), BAD_FIELDS, ids=[_error_case_id(c) for c in BAD_FIELDS])
def test_bad_field_on_add_is_a_form_error_and_creates_nothing(tenant_admin, tenant, fields, field, message):
    before = db_state()

    response = _add(tenant_admin, tenant, **fields)

    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors
    if message:
        assert message in " ".join(errors[field])
    assert db_state() == before


# The tenant is read-only once an endpoint exists.
BAD_FIELDS_ON_CHANGE = [case for case in BAD_FIELDS if case[1] != "tenant"]


@pytest.mark.parametrize(
    ("fields", "field", "message"), BAD_FIELDS_ON_CHANGE, ids=[_error_case_id(c) for c in BAD_FIELDS_ON_CHANGE]
)
def test_bad_field_on_change_is_a_form_error_and_changes_nothing(tenant_admin, tenant, fields, field, message):
    endpoint = _secured_endpoint(tenant, "bearer")
    before = db_state()

    response = _change(tenant_admin, endpoint, **{"auth_type": "bearer", **fields})

    assert response.status_code == 200
    assert field in form_errors(response)
    assert db_state() == before


def test_an_archived_event_type_is_not_offered(tenant_admin, tenant):
    EventType.objects.filter(name="chat.pending").update(archived=True)
    before = db_state()

    response = _add(tenant_admin, tenant, event_types=["chat.pending"])

    assert response.status_code == 200
    assert "Select a valid choice." in " ".join(form_errors(response)["event_types"])
    assert db_state() == before


# --- the changelist ----------------------------------------------------------------------------------


def test_event_type_filter_lists_endpoints_that_receive_the_type(tenant_admin, tenant):
    chats = endpoint_for(tenant, event_types=["chat.opened", "chat.closed"])
    everything = endpoint_for(tenant, event_types=["*"])
    endpoint_for(tenant, event_types=["message.received"])

    response = tenant_admin.get(admin_url("subscriptions_endpoint_changelist"), {"event_type": "chat.closed"})

    assert response.status_code == 200
    assert shown_ids(text(response), "subscriptions_endpoint") == {chats.pk, everything.pk}


def test_search_by_url_finds_the_endpoint(tenant_admin, tenant):
    wanted = make_endpoint(tenant, "https://93.184.216.34/wanted").endpoint
    make_endpoint(tenant, "https://93.184.216.34/other")

    response = tenant_admin.get(admin_url("subscriptions_endpoint_changelist"), {"q": "wanted"})

    assert shown_ids(text(response), "subscriptions_endpoint") == {wanted.pk}


def test_changelist_shows_health_columns(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="health")
    delivery = _test_delivery(tenant_admin, endpoint)
    now = timezone.now()
    attempts = [
        Attempt(
            delivery=delivery,
            number=number,
            started_at=now + timedelta(seconds=number),
            duration_ms=10,
            status_code=status,
            outcome=outcome,
        )
        for number, (status, outcome) in enumerate([(200, "success"), (500, "retry"), (502, "retry")], start=1)
    ]
    Attempt.objects.bulk_create(attempts)
    record_stats(attempts, now=now)  # what the recorder does with each batch

    response = tenant_admin.get(admin_url("subscriptions_endpoint_changelist"))

    assert response.status_code == 200
    html = text(response)
    assert '<td class="field-last_status">502</td>' in html
    assert '<td class="field-success_rate_24h">33% of 3</td>' in html
    assert '<td class="field-failed_in_a_row">2</td>' in html


# --- actions -----------------------------------------------------------------------------------------


def test_disable_action_disables_with_a_reason(tenant_admin, tenant):
    endpoint, other = endpoint_for(tenant), endpoint_for(tenant)

    response = _action(tenant_admin, "disable", endpoint)

    assert response.status_code == 200
    assert "Disabled 1 endpoint(s)." in messages_shown(response)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Disabled by an admin.")
    assert endpoint.disabled_at is not None
    other.refresh_from_db()
    assert other.enabled is True


@pytest.mark.usefixtures("loopback_receivers")
def test_enable_action_enables_and_clears_the_reason(tenant_admin, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url(), name="hooks").endpoint
    failing_for(endpoint, timedelta(days=6))
    disable_endpoint(endpoint=endpoint, reason="Too many failures.", notify=False)

    response = _action(tenant_admin, "enable", endpoint)

    assert "hooks: the test event got HTTP 200; the endpoint is enabled." in messages_shown(response)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at, endpoint.health.failing_since) == (
        True,
        "",
        None,
        None,
    )


def test_rotate_action_leaves_two_live_secrets(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    old = primary_secret(endpoint)

    response = _action(tenant_admin, "rotate", endpoint)

    assert response.status_code == 200
    now = timezone.now()
    secrets = list(EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1"))
    assert len(secrets) == 2
    assert all(secret.expires_at is None or secret.expires_at > now for secret in secrets)
    assert primary_secret(endpoint) != old
    [expiring] = [secret for secret in secrets if secret.secret == old]
    assert expiring.expires_at > now + timedelta(hours=23)
    assert old not in text(response) and primary_secret(endpoint) not in text(response)


def test_send_test_action_sends_a_test_event_to_the_selected_endpoint_only(tenant_admin, tenant):
    endpoint, bystander = endpoint_for(tenant), endpoint_for(tenant, event_types=["*"])

    response = _action(tenant_admin, "send_test", endpoint)

    assert "Sent a test event to 1 endpoint(s); see Deliveries." in messages_shown(response)
    [event] = Event.objects.all()
    assert (event.event_type_id, event.source, event.tenant_id) == ("webhook.test", "test", tenant.pk)
    assert event.data == EXAMPLES["webhook.test"]
    [delivery] = Delivery.objects.all()
    assert (delivery.endpoint_id, delivery.event_id, delivery.status) == (endpoint.pk, event.pk, "pending")
    assert not bystander.deliveries.exists()


def test_send_test_action_to_several_endpoints_makes_one_event_each(tenant_admin, tenant):
    first, second = endpoint_for(tenant), endpoint_for(tenant)

    _action(tenant_admin, "send_test", first, second)

    assert Event.objects.filter(event_type="webhook.test", source="test").count() == 2
    assert sorted(Delivery.objects.values_list("endpoint_id", flat=True)) == sorted([first.pk, second.pk])


def test_action_without_a_selection_changes_nothing(tenant_admin, tenant):
    endpoint_for(tenant)
    before = db_state()

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_changelist"), {"action": "disable", "index": "0"}, follow=True
    )

    assert response.status_code == 200
    assert "Items must be selected in order to perform actions on them." in text(response)
    assert db_state() == before


@pytest.mark.parametrize("action", ["enable", "disable", "rotate", "send_test"])
def test_endpoint_actions_are_refused_for_managers(tenant, action):
    endpoint = endpoint_for(tenant)
    manager = staff_client(tenant, Role.MANAGER)
    before = db_state()

    response = manager.post(
        admin_url("subscriptions_endpoint_changelist"), {"action": action, "_selected_action": [endpoint.pk]}
    )

    assert response.status_code == 403
    assert db_state() == before


# --- reveal secret -----------------------------------------------------------------------------------


def test_change_page_offers_send_test_and_reveal_buttons(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk))

    html = text(response)
    assert f'href="{admin_url("subscriptions_endpoint_send_test", endpoint.pk)}" id="send-test-event"' in html
    assert f'action="{admin_url("subscriptions_endpoint_reveal_secret", endpoint.pk)}"' in html
    deliveries = f"{admin_url('deliveries_delivery_changelist')}?endpoint__id__exact={endpoint.pk}"
    assert deliveries in html


def test_deliveries_link_of_the_change_page_lists_the_endpoints_deliveries(tenant_admin, tenant):
    endpoint, other = endpoint_for(tenant), endpoint_for(tenant)
    mine, _ = _test_delivery(tenant_admin, endpoint), _test_delivery(tenant_admin, other)

    response = tenant_admin.get(admin_url("deliveries_delivery_changelist"), {"endpoint__id__exact": endpoint.pk})

    assert response.status_code == 200
    assert shown_ids(text(response), "deliveries_delivery") == {str(mine.pk)}


def test_reveal_secret_get_redirects_without_showing_it(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    secret = primary_secret(endpoint)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_reveal_secret", endpoint.pk), follow=True)

    assert response.redirect_chain == [(f"/admin/subscriptions/endpoint/{endpoint.pk}/change/", 302)]
    assert secret not in text(response)


def test_reveal_secret_post_shows_the_current_secret(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    rotate_secret(endpoint=endpoint)
    current = primary_secret(endpoint)
    before = db_state()

    response = tenant_admin.post(admin_url("subscriptions_endpoint_reveal_secret", endpoint.pk))

    assert response.status_code == 200
    assert f'<code id="signing-secret" style="font-size:1.1em">{current}</code>' in text(response)
    assert current.startswith("whsec_")
    assert db_state() == before


def test_reveal_secret_of_an_unknown_endpoint_is_404(tenant_admin):
    assert tenant_admin.post(admin_url("subscriptions_endpoint_reveal_secret", "ep_nope")).status_code == 404


def test_reveal_secret_is_refused_for_managers(tenant):
    endpoint = endpoint_for(tenant)
    manager = staff_client(tenant, Role.MANAGER)

    response = manager.post(admin_url("subscriptions_endpoint_reveal_secret", endpoint.pk))

    assert response.status_code == 403
    assert primary_secret(endpoint) not in text(response)


# --- send test event and its result ------------------------------------------------------------------


def _test_delivery(client, endpoint, example: str = "webhook.test") -> Delivery:
    response = client.post(admin_url("subscriptions_endpoint_send_test", endpoint.pk), {"example": example})
    assert response.status_code == 302, text(response)
    delivery_id = int(re.search(r"/test-result/(\d+)/$", response["Location"]).group(1))
    return Delivery.objects.get(pk=delivery_id)


def test_send_test_page_shows_a_form(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_send_test", endpoint.pk))

    assert response.status_code == 200
    html = text(response)
    assert f"Sends a <code>webhook.test</code> event to <strong>{URL}</strong> only" in html
    assert '<option value="webhook.test" selected>example of webhook.test</option>' in html
    assert 'id="send-test-submit"' in html
    assert not Event.objects.exists()


def test_send_test_post_creates_one_test_delivery_and_redirects_to_its_result(tenant_admin, tenant):
    endpoint, bystander = endpoint_for(tenant), endpoint_for(tenant)

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_send_test", endpoint.pk), {"example": "webhook.test"}
    )

    [delivery] = Delivery.objects.all()
    assert response.status_code == 302
    assert response["Location"] == admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk)
    assert (delivery.endpoint_id, delivery.status, delivery.attempt_count) == (endpoint.pk, "pending", 0)
    event = delivery.event
    assert (event.event_type_id, event.source, event.data) == ("webhook.test", "test", EXAMPLES["webhook.test"])
    assert json.loads(event.body)["type"] == "webhook.test"
    assert not bystander.deliveries.exists()


def test_send_test_with_another_types_example_sends_that_data_as_a_test_event(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    delivery = _test_delivery(tenant_admin, endpoint, example="contact.opted_out")

    assert (delivery.event.event_type_id, delivery.event.source) == ("webhook.test", "test")
    assert delivery.event.data == EXAMPLES["contact.opted_out"]


def test_send_test_to_an_ordered_endpoint_creates_the_delivery_and_its_result_page_shows_it(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, ordered=True)

    delivery = _test_delivery(tenant_admin, endpoint, example="message.received")
    result = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    assert (delivery.endpoint_id, delivery.status, delivery.event.event_type_id) == (
        endpoint.pk,
        "pending",
        "webhook.test",
    )
    assert result.status_code == 200
    assert admin_url("deliveries_delivery_change", delivery.pk) in text(result)


def test_send_test_to_a_disabled_endpoint_still_creates_the_delivery(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    disable_endpoint(endpoint=endpoint, reason="off", notify=False)

    delivery = _test_delivery(tenant_admin, endpoint)

    assert (delivery.endpoint_id, delivery.event.source) == (endpoint.pk, "test")


@pytest.mark.parametrize("data", [{"example": "no.such_type"}, {"example": ""}, {}])
def test_send_test_with_a_bad_example_is_a_form_error(tenant_admin, tenant, data):
    endpoint = endpoint_for(tenant)
    before = db_state()

    response = tenant_admin.post(admin_url("subscriptions_endpoint_send_test", endpoint.pk), data)

    assert response.status_code == 200
    assert 'id="send-test-submit"' in text(response)
    assert db_state() == before


def test_test_result_says_waiting_while_no_attempt_exists(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, endpoint)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    assert response.status_code == 200
    html = text(response)
    assert '<p id="waiting">Waiting for a worker to send it' in html
    assert '<meta http-equiv="refresh" content="1">' in html
    assert f"<code>{delivery.event_id}</code>" in html
    assert 'id="test-result"' not in html


def test_test_result_says_not_sent_after_a_minute_without_attempt(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=61))

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    html = text(response)
    assert 'id="not-sent"' in html
    assert 'id="waiting"' not in html
    assert 'http-equiv="refresh"' not in html


def test_test_result_shows_the_attempt(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, endpoint)
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        duration_ms=87,
        status_code=202,
        response_body='{"received": true}',
        outcome=AttemptOutcome.SUCCESS,
    )

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    html = text(response)
    assert '<td id="outcome">Success</td>' in html
    assert '<td id="status-code">202</td>' in html
    assert '<td id="latency">87 ms</td>' in html
    assert '<pre id="response-body">{&quot;received&quot;: true}</pre>' in html
    assert 'id="waiting"' not in html


def test_test_result_shows_the_latest_attempt_and_its_error(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, endpoint)
    started = timezone.now()
    Attempt.objects.create(
        delivery=delivery, number=1, started_at=started, duration_ms=5, status_code=500, outcome=AttemptOutcome.RETRY
    )
    Attempt.objects.create(
        delivery=delivery,
        number=2,
        started_at=started + timedelta(seconds=5),
        duration_ms=3001,
        error="Timed out after 3.0 s",
        outcome=AttemptOutcome.RETRY,
    )

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    html = text(response)
    assert '<td id="status-code">(no response)</td>' in html
    assert '<td id="latency">3001 ms</td>' in html
    assert '<td id="error">Timed out after 3.0 s</td>' in html


def test_test_result_escapes_the_response_body(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, endpoint)
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        duration_ms=1,
        status_code=200,
        response_body="<script>alert(1)</script>",
        outcome=AttemptOutcome.SUCCESS,
    )

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    assert "<script>alert(1)</script>" not in text(response)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(response)


def test_test_result_for_a_delivery_of_another_endpoint_is_404(tenant_admin, tenant):
    endpoint, other = endpoint_for(tenant), endpoint_for(tenant)
    delivery = _test_delivery(tenant_admin, other)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, delivery.pk))

    assert response.status_code == 404


def test_test_result_for_an_unknown_delivery_is_404(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_test_result", endpoint.pk, 999999))

    assert response.status_code == 404


def test_send_test_is_refused_for_managers(tenant):
    endpoint = endpoint_for(tenant)
    manager = staff_client(tenant, Role.MANAGER)
    before = db_state()

    assert manager.get(admin_url("subscriptions_endpoint_send_test", endpoint.pk)).status_code == 403
    response = manager.post(admin_url("subscriptions_endpoint_send_test", endpoint.pk), {"example": "webhook.test"})

    assert response.status_code == 403
    assert db_state() == before
