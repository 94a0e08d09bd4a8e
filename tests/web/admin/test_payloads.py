"""The admin's payload pages: the endpoint form's payload format, shape and verification; the Heymarket token shown
once and masked after; its rotation; the preview page; the body a delivery sends; and the event types' schemas."""

import html
import json
import re

import pytest
from django.test import Client

from accounts.models import Role
from deliveries.models import Delivery
from events.models import Event, EventType, SchemaMode
from subscriptions.models import Endpoint, PayloadFormat, Verification
from subscriptions.payloads import heymarket_webhook_id
from tests.factories import URL, delivery_to, endpoint_for, make_endpoint
from tests.support.db import db_state, rows
from tests.web.admin.support import (
    admin_url,
    endpoint_form,
    form_errors,
    messages_shown,
    staff_client,
    text,
)

pytestmark = pytest.mark.django_db

SHAPE = "{event: type, payload: data}"


def _state() -> dict:
    """``db_state`` with what it leaves out: the endpoints' payload settings and the event types' schemas."""
    return {
        **db_state(),
        "payloads": rows(Endpoint, "payload_format", "payload_shape", "verification", "verification_token"),
        "schemas": rows(EventType, "schema", "schema_mode", "example"),
    }


def _page(response) -> str:
    return html.unescape(text(response))


def _add(client, tenant, /, **fields):
    return client.post(admin_url("subscriptions_endpoint_add"), endpoint_form(tenant, **fields), follow=True)


def _change(client, endpoint, /, follow: bool = True, **fields):
    data = endpoint_form(
        endpoint.tenant,
        name=endpoint.name,
        payload_format=endpoint.payload_format,
        payload_shape=endpoint.payload_shape,
        verification=endpoint.verification,
    )
    data.update(fields)
    return client.post(admin_url("subscriptions_endpoint_change", endpoint.pk), data, follow=follow)


def _change_page(client, endpoint):
    return client.get(admin_url("subscriptions_endpoint_change", endpoint.pk))


def _preview(client, endpoint, **query):
    return client.get(admin_url("subscriptions_endpoint_preview", endpoint.pk), query)


def _bodies(response) -> list[str]:
    return re.findall(r'<pre class="preview-body"[^>]*>(.*?)</pre>', _page(response), re.S)


def _heymarket(tenant, **kwargs):
    """A Heymarket endpoint and its verification token (answered once by the service)."""
    made = make_endpoint(tenant, URL, name="heymarket", payload_format="heymarket", **kwargs)
    return made.endpoint, made.verification_token


# --- the form ----------------------------------------------------------------------------------------------


def test_the_add_page_offers_the_payload_settings(tenant_admin):
    page = text(tenant_admin.get(admin_url("subscriptions_endpoint_add")))

    assert 'name="payload_format"' in page
    assert '<textarea name="payload_shape"' in page and "monospace" in page
    assert 'name="verification"' in page


def test_create_a_custom_endpoint_with_its_shape(tenant_admin, tenant):
    response = _add(tenant_admin, tenant, payload_format="custom", payload_shape=SHAPE)

    assert response.status_code == 200
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.payload_format, endpoint.payload_shape) == (PayloadFormat.CUSTOM, SHAPE)
    assert (endpoint.verification, endpoint.verification_token) == (Verification.SIGNATURE, None)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"payload_format": "custom", "payload_shape": "{event: type"}, "payload_shape", "Not a JMESPath expression"),
        ({"payload_format": "custom", "payload_shape": "type"}, "payload_shape", "not a JSON object"),
        ({"payload_format": "custom", "payload_shape": ""}, "payload_shape", "needs a JMESPath expression"),
        ({"payload_format": "standard", "payload_shape": SHAPE}, "payload_shape", "Only a custom payload format"),
        ({"payload_format": "standard", "verification": "token"}, "verification", "Only the Heymarket format"),
        ({"payload_format": "nonsense"}, "payload_format", "Select a valid choice"),
    ],
    ids=["unparsable", "not an object", "missing", "shape without custom", "token without heymarket", "format"],
)
def test_invalid_payload_settings_are_form_errors_on_their_field_and_save_nothing(
    tenant_admin, tenant, fields, field, message
):
    before = _state()

    response = _add(tenant_admin, tenant, **fields)

    assert response.status_code == 200
    errors = form_errors(response)
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert message in _page(response)
    assert _state() == before


def test_an_invalid_shape_on_the_change_page_is_a_form_error_and_changes_nothing(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders", payload_format="custom", payload_shape=SHAPE)
    before = _state()

    response = _change(tenant_admin, endpoint, payload_shape="{event: type,")

    assert "payload_shape" in form_errors(response)
    assert _state() == before


def test_a_shape_left_as_stored_is_dropped_when_the_format_is_no_longer_custom(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders", payload_format="custom", payload_shape=SHAPE)

    response = _change(tenant_admin, endpoint, payload_format="heyy")

    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert (endpoint.payload_format, endpoint.payload_shape) == (PayloadFormat.HEYY, "")


# --- the Heymarket verification token ------------------------------------------------------------------------


def test_creating_a_heymarket_endpoint_shows_its_token_once_then_only_a_mask(tenant_admin, tenant):
    response = _add(tenant_admin, tenant, payload_format="heymarket")

    endpoint = Endpoint.objects.get(tenant=tenant)
    token = endpoint.verification_token
    assert (endpoint.payload_format, endpoint.verification) == (PayloadFormat.HEYMARKET, Verification.BOTH)
    assert token
    assert [message for message in messages_shown(response) if token in message]
    assert text(response).count(token) == 1

    again = _change_page(tenant_admin, endpoint)
    page = _page(again)
    assert token not in page
    assert f"****{token[-4:]}" in page
    assert str(heymarket_webhook_id(endpoint.pk)) in page
    assert 'id="rotate-verification-token"' in page
    assert token not in _page(_change_page(tenant_admin, endpoint))


def test_a_standard_endpoint_page_has_no_token_and_no_rotate_button(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders")

    page = _page(_change_page(tenant_admin, endpoint))

    assert "rotate-verification-token" not in page
    assert "Heymarket webhook id" not in page


def test_switching_to_heymarket_shows_the_issued_token_once(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders")

    response = _change(tenant_admin, endpoint, payload_format="heymarket")

    endpoint.refresh_from_db()
    token = endpoint.verification_token
    assert (endpoint.payload_format, endpoint.verification) == (PayloadFormat.HEYMARKET, Verification.BOTH)
    assert token and text(response).count(token) == 1
    assert token not in text(_change_page(tenant_admin, endpoint))

    # Saved again: no new token, nothing shown.
    response = _change(tenant_admin, endpoint, name="renamed")
    endpoint.refresh_from_db()
    assert endpoint.verification_token == token
    assert token not in text(response)


def test_leaving_heymarket_with_the_verification_as_it_was_takes_the_signature(tenant_admin, tenant):
    endpoint, _ = _heymarket(tenant)

    response = _change(tenant_admin, endpoint, payload_format="standard")  # the select still says "both"

    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert (endpoint.payload_format, endpoint.verification) == (PayloadFormat.STANDARD, Verification.SIGNATURE)


def test_the_verification_can_be_chosen_for_a_heymarket_endpoint(tenant_admin, tenant):
    _add(tenant_admin, tenant, payload_format="heymarket", verification="token")

    assert Endpoint.objects.get(tenant=tenant).verification == Verification.TOKEN


def test_rotating_the_token_shows_the_new_one_on_that_page_only(tenant_admin, tenant):
    endpoint, old = _heymarket(tenant)

    response = tenant_admin.post(admin_url("subscriptions_endpoint_rotate_verification_token", endpoint.pk))

    endpoint.refresh_from_db()
    new = endpoint.verification_token
    assert response.status_code == 200
    assert new != old
    assert re.search(r'<code id="verification-token"[^>]*>([^<]*)</code>', text(response)).group(1) == new
    assert old not in text(response)
    assert new not in text(_change_page(tenant_admin, endpoint))


def test_a_get_of_the_rotation_changes_nothing(tenant_admin, tenant):
    endpoint, _ = _heymarket(tenant)
    before = _state()

    response = tenant_admin.get(admin_url("subscriptions_endpoint_rotate_verification_token", endpoint.pk))

    assert response.status_code == 302
    assert _state() == before


def test_a_standard_endpoint_has_no_token_to_rotate(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    before = _state()

    response = tenant_admin.post(admin_url("subscriptions_endpoint_rotate_verification_token", endpoint.pk))

    assert response.status_code == 302
    assert _state() == before


@pytest.mark.parametrize("who", ["manager", "other admin"])
def test_rotation_is_refused_to_managers_and_other_tenants(tenant, other_admin, who):
    endpoint, _ = _heymarket(tenant)
    client = staff_client(tenant, Role.MANAGER) if who == "manager" else other_admin
    before = _state()

    response = client.post(admin_url("subscriptions_endpoint_rotate_verification_token", endpoint.pk))

    assert response.status_code == (403 if who == "manager" else 404)
    assert _state() == before


# --- the preview page ------------------------------------------------------------------------------------


def test_the_change_page_links_the_preview(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders")

    page = text(_change_page(tenant_admin, endpoint))

    assert f'href="{admin_url("subscriptions_endpoint_preview", endpoint.pk)}" id="preview-payloads"' in page


def test_the_preview_of_a_standard_endpoint_shows_each_event_body_exactly(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders")
    first = delivery_to(endpoint, data={"order": "A-1"}).event
    second = delivery_to(endpoint, data={"order": "Ä-2 <b>"}).event
    before = _state()

    response = _preview(tenant_admin, endpoint)

    assert response.status_code == 200
    assert _bodies(response) == [second.body, first.body]  # newest first, byte for byte
    page = _page(response)
    assert first.pk in page and second.pk in page
    assert f"webhook-id: {first.pk}" in page and "webhook-signature: v1," in page
    assert "whsec_" not in page
    assert [cell.strip() for cell in re.findall(r'<td class="would-send">(.*?)</td>', page)] == ["yes", "yes"]
    assert _state() == before


def test_the_preview_tries_a_custom_shape_and_a_filter_without_saving_them(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, name="orders")
    delivery_to(endpoint, data={"direction": "inbound", "n": 1})
    delivery_to(endpoint, data={"direction": "outbound", "n": 2})
    before = _state()

    response = _preview(
        tenant_admin, endpoint, payload_format="custom", payload_shape=SHAPE, filter='{"direction": "inbound"}'
    )

    bodies = [json.loads(body) for body in _bodies(response)]
    assert bodies == [
        {"event": "message.received", "payload": {"direction": "outbound", "n": 2}},
        {"event": "message.received", "payload": {"direction": "inbound", "n": 1}},
    ]
    page = _page(response)
    assert [cell.strip() for cell in re.findall(r'<td class="would-send">(.*?)</td>', page)] == ["no", "yes"]
    assert "direction" in re.findall(r'<td class="reason">(.*?)</td>', page, re.S)[0]
    assert _state() == before


def test_the_preview_limit_takes_the_latest_events(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    events = [delivery_to(endpoint, data={"n": n}).event for n in range(3)]

    response = _preview(tenant_admin, endpoint, limit="2")

    assert _bodies(response) == [events[2].body, events[1].body]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"payload_format": "custom", "payload_shape": "{event: type"}, "payload_shape"),
        ({"payload_format": "custom", "payload_shape": "type"}, "payload_shape"),
        ({"payload_shape": SHAPE}, "payload_shape"),
        ({"filter": "[1, 2]"}, "filter"),
        ({"filter": "{not json"}, "filter"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"payload_format": "nonsense"}, "payload_format"),
    ],
    ids=["unparsable", "not an object", "shape of standard", "filter list", "filter json", "0", "101", "format"],
)
def test_an_invalid_proposal_is_a_form_error_and_nothing_is_saved(tenant_admin, tenant, query, field):
    endpoint = endpoint_for(tenant)
    delivery_to(endpoint)
    before = _state()

    response = _preview(tenant_admin, endpoint, **query)

    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    assert 'class="errorlist' in text(response)
    assert _bodies(response) == []
    assert _state() == before


def test_the_preview_of_a_heymarket_endpoint_masks_its_token(tenant_admin, tenant):
    endpoint, token = _heymarket(tenant)
    delivery_to(endpoint, data={"text": "hi"})

    response = _preview(tenant_admin, endpoint)

    [body] = _bodies(response)
    assert json.loads(body)["token"] == f"****{token[-4:]}"
    assert json.loads(body)["id"] == heymarket_webhook_id(endpoint.pk)
    assert token not in text(response)


def _refusals(tenant, other_admin) -> dict[str, tuple[Client, int]]:
    return {
        "manager": (staff_client(tenant, Role.MANAGER), 403),
        "user": (staff_client(tenant, Role.USER), 403),
        "other admin": (other_admin, 404),
        "anonymous": (Client(), 302),
    }


@pytest.mark.parametrize("who", ["manager", "user", "other admin", "anonymous"])
def test_the_preview_is_refused_to_all_but_the_tenants_admins(tenant, other_admin, who):
    endpoint = endpoint_for(tenant)
    delivery_to(endpoint, data={"order": "A-1"})
    client, status = _refusals(tenant, other_admin)[who]
    before = _state()

    response = _preview(client, endpoint, payload_format="custom", payload_shape=SHAPE)

    assert response.status_code == status
    assert "A-1" not in text(response)
    if who == "anonymous":
        assert response["Location"].startswith(admin_url("login"))
    assert _state() == before


def test_a_superuser_previews_any_endpoint(superuser, tenant):
    endpoint = endpoint_for(tenant)
    event = delivery_to(endpoint).event

    assert _bodies(_preview(superuser, endpoint)) == [event.body]


# --- deliveries ---------------------------------------------------------------------------------------------


def test_the_delivery_page_shows_the_body_it_sends_with_the_token_masked(tenant_admin, tenant):
    endpoint, token = _heymarket(tenant)
    delivery = delivery_to(endpoint, data={"text": "hi"})

    response = tenant_admin.get(admin_url("deliveries_delivery_change", delivery.pk))

    shown = re.search(r'<pre class="wrapped" id="delivery-body">(.*?)</pre>', _page(response), re.S).group(1)
    assert json.loads(shown) == {
        "id": heymarket_webhook_id(endpoint.pk),
        "token": f"****{token[-4:]}",
        "type": "message_recieved",
        "event_data": {"text": "hi"},
    }
    assert token not in text(response)
    assert Delivery.objects.get(pk=delivery.pk).payload_id is not None


def test_the_delivery_page_of_a_standard_endpoint_shows_the_event_body(tenant_admin, tenant):
    delivery = delivery_to(endpoint_for(tenant), data={"order": "A-1"})

    response = tenant_admin.get(admin_url("deliveries_delivery_change", delivery.pk))

    shown = re.search(r'<pre class="wrapped" id="delivery-body">(.*?)</pre>', _page(response), re.S).group(1)
    assert shown == Event.objects.get(pk=delivery.event_id).body


# --- event types --------------------------------------------------------------------------------------------


def test_a_tenant_admin_reads_the_schema_and_example_pretty_printed(tenant_admin):
    event_type = EventType.objects.get(name="message.received")

    response = tenant_admin.get(admin_url("events_eventtype_change", "message.received"))

    page = _page(response)
    schema = re.search(r'<pre class="wrapped" id="schema">(.*?)</pre>', page, re.S).group(1)
    example = re.search(r'<pre class="wrapped" id="example">(.*?)</pre>', page, re.S).group(1)
    assert json.loads(schema) == event_type.schema and "\n  " in schema
    assert json.loads(example) == event_type.example and "\n  " in example
    assert "warn (the deployment's WEBHOOKHUB_SCHEMA_MODE)" in page
    assert 'name="_save"' not in page and 'name="schema_mode"' not in page


def test_a_superuser_sets_the_schema_mode(superuser):
    event_type = EventType.objects.get(name="message.received")
    data = {
        "name": event_type.name,
        "description": event_type.description,
        "schema": json.dumps(event_type.schema),
        "schema_mode": SchemaMode.ENFORCE,
        "example": json.dumps(event_type.example),
    }

    response = superuser.post(admin_url("events_eventtype_change", event_type.name), data)

    assert response.status_code == 302
    event_type.refresh_from_db()
    assert event_type.schema_mode == SchemaMode.ENFORCE
    page = _page(superuser.get(admin_url("events_eventtype_change", event_type.name)))
    assert "enforce (its own)" in page
    assert 'name="schema_mode"' in page


def test_a_schema_that_is_not_json_schema_is_a_form_error_on_schema(superuser):
    event_type = EventType.objects.get(name="message.received")
    before = _state()

    response = superuser.post(
        admin_url("events_eventtype_change", event_type.name),
        {"name": event_type.name, "schema": '{"type": "nonsense"}', "example": "{}"},
    )

    assert response.status_code == 200
    assert list(form_errors(response)) == ["schema"]
    assert "Not a valid JSON Schema" in " ".join(form_errors(response)["schema"])
    assert _state() == before


def test_a_tenant_admin_cannot_change_the_schema_mode(tenant_admin):
    before = _state()

    response = tenant_admin.post(
        admin_url("events_eventtype_change", "message.received"),
        {"name": "message.received", "schema_mode": "enforce", "example": "{}"},
    )

    assert response.status_code == 403
    assert _state() == before
