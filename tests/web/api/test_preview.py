"""POST /api/v1/endpoints/{id}/preview/: a dry run on the tenant's latest real events of the endpoint's types, with
the saved or proposed body settings and filter; nothing is sent or saved."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from deliveries.models import Payload
from events.models import Event, EventSource
from ground.crypto import mask
from subscriptions.models import AuthType, Endpoint
from subscriptions.payloads import heymarket_webhook_id
from tests.factories import endpoint_for
from tests.support.db import db_state
from tests.web.api.support import API, key_client, session_client
from webhookhub import publish

pytestmark = pytest.mark.django_db

BEARER = "tok-preview-SECRET-0001"
INBOUND = {"id": "msg_in", "direction": "inbound", "chat_id": "chat_1", "text": "hello"}
OUTBOUND = {"id": "msg_out", "direction": "outbound", "chat_id": "chat_1", "text": "hi back"}
CHAT = {"id": "chat_1", "status": "open"}


def _preview_path(endpoint: Endpoint) -> str:
    return f"{API}/endpoints/{endpoint.pk}/preview/"


def _preview(client, endpoint: Endpoint, **body):
    return client.post(_preview_path(endpoint), body, format="json")


def _published(tenant, items, *, source: str = EventSource.APP) -> list[Event]:
    """Each (type, data) published in turn, one second apart (oldest first), so newest-first is unambiguous."""
    start = timezone.now() - timedelta(minutes=10)
    events = []
    for type_, data in items:
        event = publish(tenant=tenant, type=type_, data=data, source=source)
        Event.objects.filter(pk=event.pk).update(created_at=start + timedelta(seconds=len(events) + 1))
        events.append(Event.objects.get(pk=event.pk))
        start += timedelta(seconds=1)
    return events


def _state() -> tuple:
    endpoints = list(
        Endpoint.objects.order_by("pk").values_list("pk", "payload_format", "payload_shape", "verification", "filter")
    )
    return db_state(), endpoints, Payload.objects.count()


@pytest.fixture
def endpoint(tenant) -> Endpoint:
    """Messages and chats, inbound only, with a bearer token."""
    return endpoint_for(
        tenant,
        event_types=["message.received", "chat.opened"],
        filter={"direction": "inbound"},
        auth_type=AuthType.BEARER,
        auth={"token": BEARER},
    )


@pytest.fixture
def events(tenant, other_tenant, endpoint) -> list[Event]:
    """Oldest first: inbound, outbound (filtered out), a chat (filtered out: no direction), inbound again; and
    around them, events the preview must not list: another type, a test event, another tenant's."""
    ours = _published(
        tenant,
        [
            ("message.received", INBOUND),
            ("message.received", OUTBOUND),
            ("contact.created", {"id": "ct_1"}),  # not one of the endpoint's types
            ("chat.opened", CHAT),
            ("message.received", {**INBOUND, "id": "msg_in_2"}),
        ],
    )
    _published(tenant, [("message.received", INBOUND)], source=EventSource.TEST)
    _published(other_tenant, [("message.received", INBOUND)])
    return [event for event in ours if event.event_type_id != "contact.created"]


def test_preview_lists_the_endpoints_events_newest_first_with_what_would_be_sent(admin, endpoint, events):
    before = _state()

    response = _preview(admin, endpoint)

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["event_id"] for row in rows] == [event.pk for event in reversed(events)]
    assert [row["event_type"] for row in rows] == [
        "message.received",
        "chat.opened",
        "message.received",
        "message.received",
    ]
    assert [row["would_send"] for row in rows] == [True, False, False, True]
    assert [row["reason"] for row in rows] == [
        "",
        'The filter wants data.direction to be "inbound"; the event has no data.direction.',
        'The filter wants data.direction to be "inbound", not "outbound".',
        "",
    ]
    assert set(rows[0]) == {"event_id", "event_type", "created_at", "would_send", "reason", "body", "headers"}
    assert _state() == before  # nothing saved


def test_a_standard_endpoints_body_is_the_events_stored_body_and_secrets_are_masked(admin, endpoint, events):
    response = _preview(admin, endpoint)

    rows = response.json()["results"]
    stored = {event.pk: Event.objects.get(pk=event.pk).body for event in events}
    assert all(row["body"] == stored[row["event_id"]] for row in rows)
    headers = rows[0]["headers"]
    assert headers["webhook-id"] == rows[0]["event_id"]
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == "v1,****"  # a preview signs nothing: no request to replay
    assert headers["Authorization"] == "Bearer " + mask(BEARER)
    assert BEARER.encode() not in response.content
    assert b"whsec_" not in response.content


def test_the_limit_is_honoured(admin, endpoint, events):
    response = _preview(admin, endpoint, limit=2)

    assert response.status_code == 200, response.content
    assert [row["event_id"] for row in response.json()["results"]] == [events[-1].pk, events[-2].pk]


def test_the_limit_defaults_to_20(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["message.received"])
    published = _published(tenant, [("message.received", {**INBOUND, "id": f"m{n}"}) for n in range(23)])

    response = _preview(admin, endpoint)

    assert response.status_code == 200, response.content
    assert [row["event_id"] for row in response.json()["results"]] == [event.pk for event in published[::-1][:20]]
    assert len(_preview(admin, endpoint, limit=100).json()["results"]) == 23


@pytest.mark.parametrize("limit", [0, 101, -1, "many"])
def test_a_limit_out_of_range_answers_400_naming_limit(admin, endpoint, limit):
    response = _preview(admin, endpoint, limit=limit)

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["limit"]


def test_a_proposed_custom_shape_changes_the_bodies_and_saves_nothing(admin, endpoint, events):
    saved = admin.get(f"{API}/endpoints/{endpoint.pk}/").json()
    before = _state()

    response = _preview(admin, endpoint, payload_format="custom", payload_shape="{kind: type, way: data.direction}")

    assert response.status_code == 200, response.content
    bodies = [row["body"] for row in response.json()["results"]]
    assert bodies == [
        '{"kind":"message.received","way":"inbound"}',
        '{"kind":"chat.opened","way":null}',
        '{"kind":"message.received","way":"outbound"}',
        '{"kind":"message.received","way":"inbound"}',
    ]
    assert [row["would_send"] for row in response.json()["results"]] == [True, False, False, True]
    assert _state() == before
    after = admin.get(f"{API}/endpoints/{endpoint.pk}/").json()
    assert after == saved
    assert (after["payload_format"], after["payload_shape"]) == ("standard", "")


def test_a_proposed_filter_changes_what_would_be_sent_and_saves_nothing(admin, endpoint, events):
    before = _state()

    response = _preview(admin, endpoint, filter={"text": ["hi back", "nothing"]})

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["would_send"] for row in rows] == [False, False, True, False]
    assert rows[0]["reason"] == 'The filter wants data.text to be one of ["hi back", "nothing"], not "hello".'
    assert _state() == before
    assert Endpoint.objects.get(pk=endpoint.pk).filter == {"direction": "inbound"}


def test_a_shape_that_gives_no_body_for_an_event_says_so(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["message.received"])
    _published(tenant, [("message.received", {**INBOUND, "text": None}), ("message.received", INBOUND)])

    response = _preview(admin, endpoint, payload_format="custom", payload_shape="data.text && {text: data.text}")

    assert response.status_code == 200, response.content
    newest, oldest = response.json()["results"]
    assert (newest["would_send"], newest["body"], newest["reason"]) == (True, '{"text":"hello"}', "")
    assert (oldest["would_send"], oldest["body"], oldest["headers"]) == (False, None, {})
    assert oldest["reason"] == "The payload shape gave null, not a JSON object."


@pytest.mark.parametrize(
    ("proposal", "field"),
    [
        ({"payload_format": "custom", "payload_shape": "{kind: type"}, "payload_shape"),
        ({"payload_format": "custom", "payload_shape": "type"}, "payload_shape"),
        ({"payload_format": "custom"}, "payload_shape"),
        ({"payload_shape": "{kind: type}"}, "payload_shape"),  # the saved format is standard
        ({"payload_format": "zapier"}, "payload_format"),
        ({"filter": {"": 1}}, "filter"),
    ],
)
def test_an_invalid_proposal_answers_400_naming_its_field(admin, endpoint, events, proposal, field):
    before = _state()

    response = _preview(admin, endpoint, **proposal)

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert _state() == before


def test_a_heymarket_body_masks_the_token_and_the_real_token_never_appears(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["message.received"], payload_format="heymarket")
    token = endpoint.verification_token
    assert token
    [event] = _published(tenant, [("message.received", INBOUND)])

    response = _preview(admin, endpoint)

    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert token.encode() not in response.content
    assert token[:-4].encode() not in response.content
    assert json.loads(row["body"]) == {
        "id": heymarket_webhook_id(endpoint.pk),
        "token": mask(token),
        "type": "message_recieved",
        "event_data": INBOUND,
    }
    assert row["body"].startswith(f'{{"id":{heymarket_webhook_id(endpoint.pk)},"token":"{mask(token)}",')
    assert row["headers"]["webhook-signature"] == "v1,****"  # it would sign the real token, not the mask
    assert row["headers"]["webhook-id"] == event.pk


def test_a_heymarket_endpoint_that_only_signs_has_no_token_in_its_body(admin, tenant):
    endpoint = endpoint_for(
        tenant, event_types=["message.received"], payload_format="heymarket", verification="signature"
    )
    _published(tenant, [("message.received", INBOUND)])

    [row] = _preview(admin, endpoint).json()["results"]

    assert "token" not in json.loads(row["body"])
    assert row["headers"]["webhook-signature"] == "v1,****"  # it will be signed; the preview signs nothing


def test_test_events_are_not_listed(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["*"])
    _published(tenant, [("message.received", INBOUND)], source=EventSource.TEST)
    _published(tenant, [("webhook.test", {"message": "hello"})], source=EventSource.TEST)
    [real] = _published(tenant, [("message.received", INBOUND)], source=EventSource.API)

    response = _preview(admin, endpoint)

    assert response.status_code == 200, response.content
    assert [row["event_id"] for row in response.json()["results"]] == [real.pk]


def test_a_disabled_endpoint_would_send_nothing(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["message.received"], enabled=False)
    _published(tenant, [("message.received", INBOUND)])

    [row] = _preview(admin, endpoint).json()["results"]

    assert row["would_send"] is False
    assert "disabled" in row["reason"]
    assert row["body"] == Event.objects.get().body


# --- who --------------------------------------------------------------------------------------------------------


def test_another_tenants_admin_gets_404(other_tenant, endpoint, events):
    client = key_client(other_tenant)
    before = _state()

    response = _preview(client, endpoint)

    assert response.status_code == 404, response.content
    assert b"msg_in" not in response.content
    assert _state() == before


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(lambda tenant: key_client(tenant, Role.MANAGER), id="manager key"),
        pytest.param(lambda tenant: key_client(tenant, Role.USER), id="user key"),
        pytest.param(lambda tenant: session_client(tenant, Role.MANAGER), id="session manager"),
        pytest.param(lambda tenant: session_client(tenant, Role.USER), id="session user"),
    ],
)
def test_managers_and_users_get_403(tenant, endpoint, events, caller):
    client = caller(tenant)
    before = _state()

    response = _preview(client, endpoint)

    assert response.status_code == 403, response.content
    assert b"msg_in" not in response.content
    assert _state() == before


def test_anonymous_callers_get_401(endpoint, events):
    response = _preview(APIClient(), endpoint)

    assert response.status_code == 401, response.content
    assert b"msg_in" not in response.content
