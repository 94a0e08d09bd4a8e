"""The dashboard's payload pages: the endpoint's payload format, its preview (with settings to try), the body a
delivery sends (a Heymarket token masked), and the event-type catalog; for tenant admins only."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from events.models import Event, EventType, SchemaMode
from subscriptions.models import Endpoint
from subscriptions.payloads import heymarket_webhook_id
from tests.factories import URL, delivery_to, endpoint_for, make_endpoint
from tests.support.clients import member_client
from tests.support.db import db_state, rows
from tests.web.dashboard.support import page, url

pytestmark = pytest.mark.django_db

SHAPE = "{event: type, payload: data}"


def _state() -> dict:
    """``db_state`` with what it leaves out: the endpoints' payload settings and the event types' schemas."""
    return {
        **db_state(),
        "payloads": rows(Endpoint, "payload_format", "payload_shape", "verification", "verification_token"),
        "schemas": rows(EventType, "schema", "schema_mode", "example"),
    }


def _heymarket(tenant):
    made = make_endpoint(tenant, URL, name="heymarket", payload_format="heymarket")
    return made.endpoint, made.verification_token


def _bodies(response) -> list[str]:
    return re.findall(r'<pre class="preview-body"[^>]*>(.*?)</pre>', page(response), re.S)


def _preview(client, endpoint, **query):
    return client.get(url("endpoint_preview", endpoint.pk, **query))


# --- the endpoint page ------------------------------------------------------------------------------------


def test_the_endpoint_page_shows_the_payload_format_and_links_the_preview(tenant, tenant_admin):
    endpoint = endpoint_for(tenant, name="orders")

    response = tenant_admin.get(url("endpoint", endpoint.pk))

    shown = page(response)
    assert '<td id="payload-format">Standard envelope</td>' in shown
    assert 'id="payload-shape"' not in shown
    assert f'href="{url("endpoint_preview", endpoint.pk)}" id="preview-link"' in shown


def test_the_endpoint_page_shows_a_custom_shape(tenant, tenant_admin):
    endpoint = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE)

    shown = page(tenant_admin.get(url("endpoint", endpoint.pk)))

    assert '<td id="payload-format">Custom shape (JMESPath)</td>' in shown
    assert f'<pre id="payload-shape">{SHAPE}</pre>' in shown


def test_the_endpoint_page_of_a_heymarket_endpoint_shows_its_webhook_id_and_only_a_mask(tenant, tenant_admin):
    endpoint, token = _heymarket(tenant)

    response = tenant_admin.get(url("endpoint", endpoint.pk))

    shown = page(response)
    assert f'<td id="heymarket-webhook-id">{heymarket_webhook_id(endpoint.pk)}</td>' in shown
    assert f"****{token[-4:]}" in shown
    assert token not in shown


# --- the preview ------------------------------------------------------------------------------------------


def test_the_preview_of_a_standard_endpoint_shows_each_event_body_exactly(tenant, tenant_admin):
    endpoint = endpoint_for(tenant)
    first = delivery_to(endpoint, data={"order": "A-1"}).event
    second = delivery_to(endpoint, data={"order": "Ä-2 <b>"}).event
    before = _state()

    response = _preview(tenant_admin, endpoint)

    assert response.status_code == 200
    assert _bodies(response) == [second.body, first.body]
    assert f"webhook-id: {second.pk}" in page(response)
    assert _state() == before


def test_the_preview_tries_a_shape_and_a_filter_without_saving_them(tenant, tenant_admin):
    endpoint = endpoint_for(tenant)
    delivery_to(endpoint, data={"direction": "outbound"})
    before = _state()

    response = _preview(
        tenant_admin, endpoint, payload_format="custom", payload_shape=SHAPE, filter='{"direction": "inbound"}'
    )

    assert [json.loads(body) for body in _bodies(response)] == [
        {"event": "message.received", "payload": {"direction": "outbound"}}
    ]
    assert re.findall(r'<td class="would-send">(.*?)</td>', page(response)) == ["no"]
    assert _state() == before


def test_the_preview_keeps_the_tenant_picked(tenant, tenant_admin):
    endpoint = endpoint_for(tenant)
    event = delivery_to(endpoint).event

    response = _preview(tenant_admin, endpoint, tenant=tenant.pk)

    assert _bodies(response) == [event.body]
    assert f'<input type="hidden" name="tenant" value="{tenant.pk}">' in page(response)


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"payload_format": "custom", "payload_shape": "{event: type"}, "payload_shape", "Not a JMESPath expression"),
        ({"payload_format": "custom", "payload_shape": "data.n"}, "payload_shape", "not a JSON object"),
        ({"filter": '"inbound"'}, "filter", "A filter is an object"),
        ({"limit": "500"}, "limit", "less than or equal to 100"),
    ],
    ids=["unparsable", "not an object", "filter", "limit"],
)
def test_an_invalid_proposal_is_a_form_error_and_nothing_is_saved(tenant, tenant_admin, query, field, message):
    endpoint = endpoint_for(tenant)
    delivery_to(endpoint)
    before = _state()

    response = _preview(tenant_admin, endpoint, **query)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert message in page(response)
    assert _bodies(response) == []
    assert _state() == before


def test_the_preview_of_a_heymarket_endpoint_masks_its_token(tenant, tenant_admin):
    endpoint, token = _heymarket(tenant)
    delivery_to(endpoint, data={"text": "hi"})

    response = _preview(tenant_admin, endpoint)

    [body] = _bodies(response)
    assert json.loads(body)["token"] == f"****{token[-4:]}"
    assert token not in page(response)


@pytest.mark.parametrize("who", ["manager", "user", "other admin", "anonymous"])
def test_the_preview_is_refused_to_all_but_the_tenants_admins(tenant, other_admin, who):
    endpoint = endpoint_for(tenant)
    delivery_to(endpoint, data={"order": "A-1"})
    clients = {
        "manager": (member_client(tenant, Role.MANAGER, is_staff=True), 403),
        "user": (member_client(tenant, Role.USER, is_staff=True), 403),
        "other admin": (other_admin, 404),
        "anonymous": (Client(), 302),
    }
    client, status = clients[who]
    before = _state()

    response = _preview(client, endpoint, payload_format="custom", payload_shape=SHAPE)

    assert response.status_code == status
    assert "A-1" not in page(response)
    if who == "anonymous":
        assert response["Location"].startswith(reverse("admin:login"))
    assert _state() == before


def test_a_superuser_previews_any_tenants_endpoint(tenant, superuser):
    endpoint = endpoint_for(tenant)
    event = delivery_to(endpoint).event

    assert _bodies(_preview(superuser, endpoint)) == [event.body]


# --- the delivery page ------------------------------------------------------------------------------------


def test_the_delivery_page_shows_the_body_it_sends_with_the_token_masked(tenant, tenant_admin):
    endpoint, token = _heymarket(tenant)
    delivery = delivery_to(endpoint, data={"text": "hi"})

    response = tenant_admin.get(url("delivery", delivery.pk))

    shown = re.search(r'<pre id="envelope">(.*?)</pre>', page(response), re.S).group(1)
    assert json.loads(shown) == {
        "id": heymarket_webhook_id(endpoint.pk),
        "token": f"****{token[-4:]}",
        "type": "message_recieved",
        "event_data": {"text": "hi"},
    }
    assert shown != Event.objects.get(pk=delivery.event_id).body
    assert token not in page(response)


def test_the_delivery_page_of_a_custom_endpoint_shows_its_shaped_body(tenant, tenant_admin):
    endpoint = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE)
    delivery = delivery_to(endpoint, data={"n": 1})

    response = tenant_admin.get(url("delivery", delivery.pk))

    shown = re.search(r'<pre id="envelope">(.*?)</pre>', page(response), re.S).group(1)
    assert shown == delivery.sent_body() == '{"event":"message.received","payload":{"n":1}}'


# --- the event-type catalog ----------------------------------------------------------------------------------


def test_the_catalog_lists_each_type_with_its_mode_schema_and_example(tenant_admin):
    EventType.objects.filter(name="chat.closed").update(schema_mode=SchemaMode.ENFORCE)
    EventType.objects.filter(name="chat.opened").update(archived=True)
    received = EventType.objects.get(name="message.received")

    response = tenant_admin.get(url("event_types"))

    assert response.status_code == 200
    shown = page(response)
    assert 'id="nav-event-types"' in shown
    names = re.findall(r'<div class="card event-type" id="type-([^"]+)">', shown)
    assert names == sorted(EventType.objects.filter(archived=False).values_list("name", flat=True))
    assert "chat.opened" not in names
    card = re.search(r'id="type-message.received">(.*?)</div>\n</div>', shown, re.S).group(1)
    assert received.description in card
    assert '<strong class="schema-mode">warn</strong>' in card
    schema = re.search(r'<pre class="schema">(.*?)</pre>', card, re.S).group(1)
    example = re.search(r'<pre class="example">(.*?)</pre>', card, re.S).group(1)
    assert json.loads(schema) == received.schema and "\n  " in schema
    assert json.loads(example) == received.example
    closed = re.search(r'id="type-chat.closed">(.*?)</div>\n</div>', shown, re.S).group(1)
    assert '<strong class="schema-mode">enforce</strong> <span class="muted">(its own)</span>' in closed


def test_every_dashboard_page_links_the_catalog(tenant, tenant_admin):
    response = tenant_admin.get(url("overview"))

    assert f'href="{url("event_types")}"' in page(response)


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_the_catalog_is_refused_to_managers_and_users(tenant, role):
    assert member_client(tenant, role, is_staff=True).get(url("event_types")).status_code == 403


def test_the_catalog_sends_anonymous_visitors_to_the_login(db):
    response = Client().get(url("event_types"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
