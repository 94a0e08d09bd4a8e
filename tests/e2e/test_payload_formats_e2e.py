"""End to end: endpoints with the Heymarket, Heyy and CustomerText presets and custom shapes, a real worker, real
receivers. Each platform's receiver is written from that platform's documentation (/work/shared/seeds: Heymarket's
outbound webhooks and payload schema, Heyy's message webhooks, CustomerText's webhook guide), as an existing
customer receiver would be: it answers 200 to a request it accepts and 400 (saying why) to one it rejects."""

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from deliveries.models import Attempt, Delivery, DeliveryStatus, Payload
from deliveries.preview import preview
from deliveries.services.actions import replay, resend
from events.models import Event
from subscriptions.services import rotate_verification_token, update_endpoint
from tests.factories import make_endpoint
from tests.support.receiver import Received, Receiver, Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

Check = Callable[[Received], list[str]]


class DocReceiver:
    """A receiver's request handler: ``check`` says why it rejects a request (nothing: accepted, 200). The first
    ``down_for`` requests are answered 500 whatever they hold (the receiver is down)."""

    def __init__(self, check: Check, *, down_for: int = 0) -> None:
        self.check = check
        self.down_for = down_for
        self.rejected: list[tuple[Received, list[str]]] = []

    def __call__(self, received: Received) -> Reply:
        if self.down_for > 0:
            self.down_for -= 1
            return Reply(status=500, body=b"down")
        problems = self.check(received)
        if problems:
            self.rejected.append((received, problems))
            return Reply(status=400, body="; ".join(problems).encode())
        return Reply(status=200)


@pytest.fixture
def receivers():
    """``receivers(check=None, down_for=0)``: a started receiver (answered by a ``DocReceiver`` when ``check`` is
    given); all are stopped after the test."""
    started: list[Receiver] = []

    def start(check: Check | None = None, *, down_for: int = 0) -> Receiver:
        receiver = Receiver().start()
        started.append(receiver)
        if check is not None:
            receiver.responder = DocReceiver(check, down_for=down_for)
        elif down_for:
            receiver.replies = [Reply(status=500, body=b"down")] * down_for
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def _rejected(receiver: Receiver) -> list[tuple[Received, list[str]]]:
    assert isinstance(receiver.responder, DocReceiver)
    return receiver.responder.rejected


def _json_object(received: Received, problems: list[str]) -> dict[str, Any]:
    # Heymarket's documented receiver: "payload = request.get_json()" (Flask parses only a JSON content type).
    if received.headers.get("content-type") != "application/json":
        problems.append(f"content-type {received.headers.get('content-type')!r}")
    try:
        body = json.loads(received.body)
    except ValueError:
        problems.append("not JSON")
        return {}
    if not isinstance(body, dict):
        problems.append("not a JSON object")
        return {}
    return body


def _signed_by(secret: str, received: Received, problems: list[str]) -> None:
    """The Standard Webhooks check, over the exact bytes received."""
    try:
        Webhook(secret).verify(received.body, received.headers)
    except Exception as error:  # noqa: BLE001 - any failure is a rejection
        problems.append(f"signature: {error}")


# --- Heymarket: the payload schema page ("WEBHOOK heymarketEvent") ----------------------------------------------

# "type enum<string> required ... message_recieved preserves the current API spelling. Available options:
#  message_sent, message_recieved, chat_reassigned, chat_closed, chat_opened, chat_pending, chat_transferred,
#  target_opt_out, target_opt_in, target_double_opt_in, target_double_opt_restricted, incoming_call"
HEYMARKET_DOCUMENTED_TYPES = {
    "message_sent",
    "message_recieved",
    "chat_reassigned",
    "chat_closed",
    "chat_opened",
    "chat_pending",
    "chat_transferred",
    "target_opt_out",
    "target_opt_in",
    "target_double_opt_in",
    "target_double_opt_restricted",
    "incoming_call",
}
# The catalog's types for those events, and the name each must arrive with.
HEYMARKET_NAMES = {
    "message.sent": "message_sent",
    "message.received": "message_recieved",
    "chat.reassigned": "chat_reassigned",
    "chat.closed": "chat_closed",
    "chat.opened": "chat_opened",
    "chat.pending": "chat_pending",
    "chat.transferred": "chat_transferred",
    "contact.opted_out": "target_opt_out",
    "contact.opted_in": "target_opt_in",
    "contact.double_opt_in": "target_double_opt_in",
    "contact.double_opt_restricted": "target_double_opt_restricted",
    "call.incoming": "incoming_call",
}
# "event_data ... Message events send a Message, chat events send a Conversation, and opt-in/opt-out events send an
#  UnSubscribed payload." The Message and Conversation fields as in the schema's example.
HEYMARKET_CONVERSATION = {"id": 123456, "inbox": 42, "status": "open", "target": "15105553344", "channel": "sms"}
HEYMARKET_MESSAGE = {
    "id": 9980041,
    "text": "What are your hours?",
    "date": "2026-04-16T14:22:00Z",
    "phone": "15105553344",
    "conversation": HEYMARKET_CONVERSATION,
}


def heymarket_check(*, token: Callable[[], str | None], secret: str | None) -> Check:
    """``token``: the verification token the receiver was given (None: it checks the signature instead);
    ``secret``: the signing secret it verifies with (None: it checks the token only)."""

    def check(received: Received) -> list[str]:
        problems: list[str] = []
        body = _json_object(received, problems)
        # "id integer required  Webhook configuration ID."
        if type(body.get("id")) is not int:
            problems.append(f"id {body.get('id')!r} is not an integer")
        # "token string required  Webhook verification token generated for the webhook configuration."
        expected = token()
        if expected is not None and body.get("token") != expected:
            problems.append("wrong verification token")
        if body.get("type") not in HEYMARKET_DOCUMENTED_TYPES:
            problems.append(f"type {body.get('type')!r} is not a documented one")
        # "event_data object required"
        event_data = body.get("event_data")
        if not isinstance(event_data, dict):
            problems.append("event_data is not an object")
        elif str(body.get("type")).startswith("message_"):  # "Message events send a Message"
            if type(event_data.get("id")) is not int or not isinstance(event_data.get("text"), str):
                problems.append("event_data is not a Message")
        elif str(body.get("type")).startswith("chat_"):  # "chat events send a Conversation"
            if type(event_data.get("id")) is not int or type(event_data.get("inbox")) is not int:
                problems.append("event_data is not a Conversation")
        if secret is not None:
            _signed_by(secret, received, problems)
        return problems

    return check


def _heymarket_data(event_type: str) -> dict[str, Any]:
    if event_type.startswith("message."):
        return HEYMARKET_MESSAGE
    if event_type.startswith("chat."):
        return HEYMARKET_CONVERSATION
    return {"phone": "15105553344", "date": "2026-04-16T14:22:00Z"}


# --- Heyy: "Message webhooks" ------------------------------------------------------------------------------------

# "The Heyy API currently supports the following webhook event types: message.received, message.sent,
#  message.updated"
HEYY_EVENTS = ("message.received", "message.sent", "message.updated")


def _heyy_message(sender: str, status: str, text: str) -> dict[str, Any]:
    """The ``data`` of Heyy's documented payloads (a message object)."""
    return {
        "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "type": "message",
        "sender": sender,
        "sources": [{"type": "vendor"}],
        "status": status,
        "scheduledAt": None,
        "content": {"body": text, "attachments": []},
        "forwarded": False,
        "reactions": [],
        "errors": [],
        "history": [],
        "vendorId": "wamid.HBgNOTcyNTQ0Nzc4NzcwFQIAEhgUMzJCNzMyRzU0OTQ2MDdDNUE1RTIA",
        "timestamp": "2026-03-13T23:29:34.000Z",
        "metadata": {},
        "chat": {"id": "5f3700cd-a5cf-4b2b-be5a-23b013025c11"},
        "contact": {"id": "259c9fec-c831-41ad-8a43-3fdad389d015", "firstName": "John", "lastName": "Doe"},
        "channel": {"id": "h9dd4c3e-b049-4903-b047-e2717f1e88e3", "type": "whatsapp", "name": "Examply"},
    }


HEYY_DATA = {
    "message.received": _heyy_message("inbound", "delivered", "Hello world"),
    "message.sent": _heyy_message("outbound", "pending", "Hello back"),
    "message.updated": _heyy_message("outbound", "delivered", "Hello back"),
}


def heyy_check(*, tenant_id: str, secret: str) -> Check:
    def check(received: Received) -> list[str]:
        problems: list[str] = []
        # { "id": "f8a2b1c3-...", "tenantId": "a98d0e1f2-...", "event": "message.received", "data": { ... } }
        body = _json_object(received, problems)
        # "Rely on the id and event fields for routing logic."
        if not isinstance(body.get("id"), str) or not body["id"]:
            problems.append("no id")
        if body.get("tenantId") != tenant_id:
            problems.append(f"tenantId {body.get('tenantId')!r}")
        if body.get("event") not in HEYY_EVENTS:
            problems.append(f"event {body.get('event')!r} is not a documented one")
        # "Message webhooks re-use the same object": "data": {"id", "type": "message", "sender", "content": {...}}
        data = body.get("data")
        if not isinstance(data, dict) or data.get("type") != "message":
            problems.append("data is not a message object")
        elif not isinstance(data.get("content"), dict) or not isinstance(data["content"].get("body"), str):
            problems.append("the message has no content body")
        elif data.get("sender") not in ("inbound", "outbound"):
            problems.append(f"sender {data.get('sender')!r}")
        _signed_by(secret, received, problems)
        return problems

    return check


# --- CustomerText: "Webhook Integrations" ------------------------------------------------------------------------

API_KEY_HEADER, API_KEY = "X-Api-Key", "ct-key-0123456789abcdef"
# "a typical new-customer payload includes: { "event": "new_contact", "timestamp": "2026-04-25T14:30:00Z",
#  "data": { "contact_id": "12345", "first_name": "Jane", "last_name": "Smith", "phone": "+15551234567", ...
CUSTOMERTEXT_CONTACT = {
    "contact_id": "12345",
    "first_name": "Jane",
    "last_name": "Smith",
    "phone": "+15551234567",
    "email": "jane@example.com",
    "groups": ["customers", "Events"],
    "source": "keyword_optin",
    "keyword": "JOIN",
}
# "New customer", "customer Opt-Out", "Inbound Message", "Campaign Sent", "customer Updated", "Keyword Opt-In"
CUSTOMERTEXT_EVENTS = {
    "contact.created": CUSTOMERTEXT_CONTACT,
    "contact.opted_out": {**CUSTOMERTEXT_CONTACT, "keyword": "STOP"},
    "message.received": {"contact_id": "12345", "phone": "+15551234567", "text": "What time do you open?"},
    "campaign.sent": {"campaign_id": "987", "name": "Spring sale", "recipients": 1200},
    "contact.updated": {**CUSTOMERTEXT_CONTACT, "email": "jane.smith@example.com"},
    "keyword.opted_in": {**CUSTOMERTEXT_CONTACT, "keyword": "DEALS"},
}


def customertext_check(*, secret: str) -> Check:
    def check(received: Received) -> list[str]:
        problems: list[str] = []
        # "API key header -- Add a custom header with your API key value."
        if received.headers.get(API_KEY_HEADER.lower()) != API_KEY:
            problems.append("no API key")
        body = _json_object(received, problems)
        # "event": "new_contact" (the one name documented; "Each event sends a JSON payload ...")
        if not isinstance(body.get("event"), str) or not re.fullmatch(r"[a-z]+(_[a-z]+)*", body["event"]):
            problems.append(f"event {body.get('event')!r}")
        # "timestamp": "2026-04-25T14:30:00Z": ISO-8601, UTC
        stamp = body.get("timestamp")
        try:
            parsed = datetime.fromisoformat(stamp) if isinstance(stamp, str) and stamp.endswith("Z") else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.utcoffset() != timedelta(0):
            problems.append(f"timestamp {stamp!r} is not ISO-8601 UTC")
        # "data": { ... }; for a new customer the contact's fields
        data = body.get("data")
        if not isinstance(data, dict):
            problems.append("data is not an object")
        elif body.get("event") == "new_contact" and not {"contact_id", "first_name", "phone"} <= data.keys():
            problems.append("a new_contact without the contact")
        _signed_by(secret, received, problems)
        return problems

    return check


# --- helpers -----------------------------------------------------------------------------------------------------


def _all_settled(event_ids: list[str]):
    def check():
        deliveries = list(Delivery.objects.filter(event_id__in=event_ids))
        return deliveries if deliveries and all(d.status != DeliveryStatus.PENDING for d in deliveries) else None

    return check


def _by_event(requests: list[Received]) -> dict[str, Received]:
    by_id = {request.headers["webhook-id"]: request for request in requests}
    assert len(by_id) == len(requests), "an event arrived twice"
    return by_id


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _assert_all_accepted(receiver: Receiver, events: list[Event]) -> dict[str, Received]:
    """Every event arrived once and was accepted at its first attempt."""
    arrived = _by_event(receiver.wait_for(len(events)))
    assert _rejected(receiver) == []
    assert set(arrived) == {event.pk for event in events}
    deliveries = wait_until(_all_settled([event.pk for event in events]))
    assert {(d.status, d.attempt_count) for d in deliveries} == {(DeliveryStatus.SUCCEEDED, 1)}
    return arrived


# --- the presets, against their platforms' receivers ----------------------------------------------------------


def test_heymarket_receiver_accepts_every_event_signed_and_with_its_token(e2e, tenant, receivers):
    """Verification ``both``: the token in the body and a valid Standard Webhooks signature."""
    receiver = receivers()
    created = make_endpoint(tenant, receiver.url(), payload_format="heymarket", event_types=list(HEYMARKET_NAMES))
    assert created.endpoint.verification == "both" and created.verification_token
    receiver.responder = DocReceiver(heymarket_check(token=lambda: created.verification_token, secret=created.secret))
    e2e.start_all()

    events = [publish(tenant=tenant, type=name, data=_heymarket_data(name)) for name in HEYMARKET_NAMES]

    arrived = _assert_all_accepted(receiver, events)
    for event in events:
        body = json.loads(arrived[event.pk].body)
        assert body["type"] == HEYMARKET_NAMES[event.event_type_id]
        assert body["event_data"] == event.data
        assert body["token"] == created.verification_token
    assert len({json.loads(request.body)["id"] for request in arrived.values()}) == 1  # the webhook's id


def test_heymarket_token_only_and_signature_only(e2e, tenant, receivers):
    """``token``: no signature headers, the token in the body (the retry after a rotation carries the new one);
    ``signature``: no token in the body, the signature verifies."""
    by_token, by_signature = receivers(), receivers()
    token_only = make_endpoint(
        tenant, by_token.url(), payload_format="heymarket", verification="token", event_types=["message.received"]
    )
    signature_only = make_endpoint(
        tenant,
        by_signature.url(),
        payload_format="heymarket",
        verification="signature",
        event_types=["message.received"],
    )
    current_token = {"value": token_only.verification_token}
    by_token.responder = DocReceiver(heymarket_check(token=lambda: current_token["value"], secret=None), down_for=1)
    by_signature.responder = DocReceiver(heymarket_check(token=lambda: None, secret=signature_only.secret))
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data=HEYMARKET_MESSAGE)

    [first] = by_token.wait_for(1)
    current_token["value"] = rotate_verification_token(endpoint=token_only.endpoint)
    first_again, retry = by_token.wait_for(2)
    [signed] = by_signature.wait_for(1)
    assert _rejected(by_token) == [] and _rejected(by_signature) == []
    for request in (first, retry):
        assert "webhook-signature" not in request.headers
        assert request.headers["webhook-id"] == event.pk
    assert json.loads(first.body)["token"] == token_only.verification_token
    assert json.loads(retry.body)["token"] == current_token["value"] != token_only.verification_token
    old, new = json.dumps(token_only.verification_token), json.dumps(current_token["value"])
    assert retry.body == first.body.replace(old.encode(), new.encode())  # the same body, the token aside
    assert "token" not in json.loads(signed.body)
    assert Webhook(signature_only.secret).verify(signed.body, signed.headers)["event_data"] == HEYMARKET_MESSAGE
    statuses = wait_until(_all_settled([event.pk]))
    assert {d.status for d in statuses} == {DeliveryStatus.SUCCEEDED}


def test_heyy_receiver_accepts_every_message_event(e2e, tenant, receivers):
    receiver = receivers()
    created = make_endpoint(tenant, receiver.url(), payload_format="heyy", event_types=list(HEYY_EVENTS))
    receiver.responder = DocReceiver(heyy_check(tenant_id=tenant.pk, secret=created.secret))
    e2e.start_all()

    events = [publish(tenant=tenant, type=name, data=HEYY_DATA[name]) for name in HEYY_EVENTS]

    arrived = _assert_all_accepted(receiver, events)
    for event in events:
        body = json.loads(arrived[event.pk].body)
        assert (body["id"], body["event"], body["data"]) == (event.pk, event.event_type_id, event.data)


def test_customertext_receiver_accepts_every_event(e2e, tenant, receivers):
    receiver = receivers()
    created = make_endpoint(
        tenant,
        receiver.url(),
        payload_format="customertext",
        event_types=list(CUSTOMERTEXT_EVENTS),
        auth_type="api_key",
        auth={"header": API_KEY_HEADER, "value": API_KEY},
    )
    receiver.responder = DocReceiver(customertext_check(secret=created.secret))
    e2e.start_all()

    events = [publish(tenant=tenant, type=name, data=data) for name, data in CUSTOMERTEXT_EVENTS.items()]

    arrived = _assert_all_accepted(receiver, events)
    new_contact = json.loads(arrived[events[0].pk].body)
    assert (new_contact["event"], new_contact["data"]) == ("new_contact", CUSTOMERTEXT_CONTACT)
    for event in events:
        body = json.loads(arrived[event.pk].body)
        # as the guide writes it, "2026-04-25T14:30:00Z": whole seconds, so strptime-based receivers parse it
        assert datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) == (
            event.occurred_at.replace(microsecond=0)
        )
        assert body["data"] == event.data
    assert len({json.loads(request.body)["event"] for request in arrived.values()}) == len(events)


# --- custom shapes ---------------------------------------------------------------------------------------------

OLD_SHAPE = "{event: type, text: data.text}"
NEW_SHAPE = "{kind: type, message: {text: data.text, at: timestamp}}"


def test_every_retry_sends_the_first_bytes_after_the_shape_changed(e2e, tenant, receivers):
    receiver = receivers(down_for=2)  # 500, 500, then 200
    created = make_endpoint(tenant, receiver.url(), payload_format="custom", payload_shape=OLD_SHAPE)
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data={"text": "hello"})

    [first] = receiver.wait_for(1)
    delivery = wait_until(lambda: Delivery.objects.filter(event=event, attempt_count__gte=1).first())
    update_endpoint(endpoint=created.endpoint, payload_shape=NEW_SHAPE)
    changed_at = time.time()
    resend(delivery)  # due now (unless its retry was claimed meanwhile: then that one goes)

    requests = receiver.wait_for(3)
    assert requests[-1].at > changed_at  # at least one retry was sent after the change
    assert first.body == _compact({"event": "message.received", "text": "hello"})
    assert [request.body for request in requests] == [first.body] * 3
    for request in requests:
        assert Webhook(created.secret).verify(request.body, request.headers)["text"] == "hello"
    assert wait_until(_all_settled([event.pk]))[0].status == DeliveryStatus.SUCCEEDED

    later = publish(tenant=tenant, type="message.received", data={"text": "later"})

    fourth = receiver.wait_for(4)[-1]
    assert fourth.headers["webhook-id"] == later.pk
    assert json.loads(fourth.body) == {
        "kind": "message.received",
        "message": {"text": "later", "at": json.loads(later.body)["timestamp"]},
    }
    assert Webhook(created.secret).verify(fourth.body, fourth.headers)["kind"] == "message.received"


def test_preview_shows_the_bytes_that_were_sent(e2e, tenant, receivers):
    custom_receiver, heyy_receiver = receivers(), receivers()
    custom = make_endpoint(tenant, custom_receiver.url(), payload_format="custom", payload_shape=NEW_SHAPE)
    heyy = make_endpoint(tenant, heyy_receiver.url(), payload_format="heyy", event_types=list(HEYY_EVENTS))
    e2e.start_all()

    events = [publish(tenant=tenant, type=name, data=HEYY_DATA[name]) for name in HEYY_EVENTS]

    for receiver, created in ((custom_receiver, custom), (heyy_receiver, heyy)):
        arrived = _by_event(receiver.wait_for(len(events)))
        items = preview(created.endpoint, now=timezone.now())
        assert {item.event_id for item in items} == {event.pk for event in events}
        for item in items:
            assert item.would_send and item.body is not None
            assert item.body.encode() == arrived[item.event_id].body
            assert Webhook(created.secret).verify(arrived[item.event_id].body, arrived[item.event_id].headers)


def test_a_shape_that_gives_no_body_sends_nothing_until_it_is_fixed_and_replayed(e2e, tenant, receivers):
    shaped_receiver, standard_receiver = receivers(), receivers()
    # The catalog's message.received example has a contact: the shape saves; this event has none: null.
    shaped = make_endpoint(
        tenant,
        shaped_receiver.url(),
        event_types=["message.received"],
        payload_format="custom",
        payload_shape="data.contact.{name: name, phone: phone_number}",
    ).endpoint
    standard = make_endpoint(tenant, standard_receiver.url())
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data={"text": "no contact here"})

    [request] = standard_receiver.wait_for(1)
    assert request.body == event.body.encode()
    assert Webhook(standard.secret).verify(request.body, request.headers)["data"] == event.data
    wait_until(lambda: Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).exists())
    failed = Delivery.objects.get(event=event, endpoint=shaped)
    assert (failed.status, failed.attempt_count, failed.payload_id) == (DeliveryStatus.FAILED, 0, None)
    assert failed.last_error.startswith("No body:") and "null" in failed.last_error
    assert not Attempt.objects.filter(delivery=failed).exists()
    assert shaped_receiver.requests == []

    update_endpoint(endpoint=shaped, payload_shape="{text: data.text, contact: data.contact}")
    replayed = replay(
        endpoint=shaped, statuses=["failed"], since=failed.created_at, until=timezone.now() + timedelta(seconds=1)
    )

    assert replayed == 1
    [arrived] = shaped_receiver.wait_for(1)
    assert arrived.headers["webhook-id"] == event.pk
    assert arrived.body == _compact({"text": "no contact here", "contact": None})
    assert {d.status for d in wait_until(_all_settled([event.pk]))} == {DeliveryStatus.SUCCEEDED}


def test_one_body_is_stored_per_distinct_shape_and_every_endpoint_gets_its_own(e2e, tenant, receivers):
    shape = "{event: type, text: data.text, tenant: tenant_id}"
    six = [receivers() for _ in range(6)]
    standard = [make_endpoint(tenant, receiver.url()) for receiver in six[:2]]
    custom = [
        make_endpoint(tenant, receiver.url(), payload_format="custom", payload_shape=shape) for receiver in six[2:5]
    ]
    heyy = make_endpoint(tenant, six[5].url(), payload_format="heyy")
    e2e.start_all()

    event = publish(tenant=tenant, type="message.received", data={"text": "fan out"})

    assert Payload.objects.filter(event_id=event.pk).count() == 2
    got = [receiver.wait_for(1)[0] for receiver in six]
    for created, request in zip([*standard, *custom, heyy], got, strict=True):
        assert request.headers["webhook-id"] == event.pk
        Webhook(created.secret).verify(request.body, request.headers)
    assert [request.body for request in got[:2]] == [event.body.encode()] * 2
    expected_custom = _compact({"event": "message.received", "text": "fan out", "tenant": tenant.pk})
    assert [request.body for request in got[2:5]] == [expected_custom] * 3
    heyy_body = json.loads(got[5].body)
    assert heyy_body == {"id": event.pk, "tenantId": tenant.pk, "event": "message.received", "data": event.data}
    assert {d.status for d in wait_until(_all_settled([event.pk]))} == {DeliveryStatus.SUCCEEDED}
    assert all(len(receiver.requests) == 1 for receiver in six)
