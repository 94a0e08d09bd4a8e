"""POST /triggers/{id}: a captured request becomes an event of the trigger's type; every error publishes nothing."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.test.client import FakePayload
from django.utils import timezone

from accounts.services import create_api_key
from deliveries.models import Delivery
from events.models import Event, EventSource, EventType, TriggerOutcome, TriggerRequest
from events.triggers import prune_trigger_requests, rotate_trigger_key
from ground.conf import setting
from tests.factories import URL, make_endpoint
from tests.web.triggers.support import (
    BODY,
    CAPTURED,
    EVENT_TYPE,
    MAPPED_BODY,
    capture_url,
    make_trigger,
    nothing_published,
    post_capture,
)

pytestmark = pytest.mark.django_db


# --- success --------------------------------------------------------------------------------------


def test_a_captured_request_answers_200_with_exactly_the_message(made):
    response = post_capture(made.trigger.pk, key=made.api_key)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == CAPTURED


def test_a_captured_request_publishes_one_event_with_the_mapped_data(made, tenant):
    post_capture(made.trigger.pk, key=made.api_key)

    [event] = Event.objects.all()
    assert (event.tenant, event.event_type_id, event.source) == (tenant, EVENT_TYPE, EventSource.TRIGGER)
    assert event.data == MAPPED_BODY
    envelope = json.loads(event.body)
    assert (envelope["id"], envelope["type"], envelope["tenant_id"]) == (event.pk, EVENT_TYPE, tenant.pk)
    assert envelope["data"] == MAPPED_BODY


def test_the_event_is_delivered_to_endpoints_subscribed_to_its_type(made, tenant, other_tenant):
    subscribed = make_endpoint(tenant, URL, event_types=[EVENT_TYPE]).endpoint
    everything = make_endpoint(tenant, URL, event_types=["*"]).endpoint
    make_endpoint(tenant, URL, event_types=["message.received"])
    make_endpoint(other_tenant, URL, event_types=["*"])

    post_capture(made.trigger.pk, key=made.api_key)

    [event] = Event.objects.all()
    delivered_to = set(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True))
    assert delivered_to == {subscribed.pk, everything.pk}
    assert Delivery.objects.count() == 2


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [("", "application/json"), ("/", "application/json"), ("", "application/json; charset=utf-8")],
    ids=["no slash", "trailing slash", "charset"],
)
def test_the_url_with_or_without_slash_and_json_with_a_charset_are_accepted(made, suffix, content_type):
    response = Client().post(
        capture_url(made.trigger.pk) + suffix,
        data=json.dumps(BODY),
        content_type=content_type,
        headers={"Authorization": f"Bearer {made.api_key}"},
    )

    assert response.status_code == 200, response.content
    assert Event.objects.get().data == MAPPED_BODY


def test_fields_the_sample_did_not_have_are_kept_under_unmapped(made):
    body = {**BODY, "campaign": {"id": 42, "tags": ["spring"]}}

    post_capture(made.trigger.pk, body, key=made.api_key)

    unmapped = Event.objects.get().data["unmapped"]
    assert unmapped["campaign.id"] == 42
    assert unmapped["campaign.tags[0]"] == "spring"


def test_a_mapped_path_absent_from_the_request_is_left_out_and_the_rest_captured(made):
    body = {"contact": {"phone": "+15555550111"}}

    response = post_capture(made.trigger.pk, body, key=made.api_key)

    assert response.status_code == 200
    assert Event.objects.get().data == {"phone": "+15555550111"}


def test_an_unmapped_identifier_is_published_under_identifier(tenant):
    created = make_trigger(tenant, identifier="contact.phone", mapping={"note": "note"})

    post_capture(created.trigger.pk, key=created.api_key)

    data = Event.objects.get().data
    assert data["identifier"] == "+15555550999"
    assert data["note"] == "urgent"
    assert "contact.phone" not in data["unmapped"]


def test_the_bearer_scheme_is_case_insensitive(made):
    response = post_capture(made.trigger.pk, Authorization=f"bearer {made.api_key}")

    assert response.status_code == 200, response.content


def test_a_captured_request_is_logged_with_its_event(made):
    body = json.dumps(BODY)

    post_capture(made.trigger.pk, body, key=made.api_key)

    [logged] = TriggerRequest.objects.all()
    event = Event.objects.get()
    assert logged.trigger_id == made.trigger.pk
    assert (logged.status_code, logged.outcome, logged.event_id) == (200, TriggerOutcome.CAPTURED, event.pk)
    assert logged.source_ip == "127.0.0.1"
    assert logged.body_excerpt == body
    assert logged.received_at is not None


def test_the_logged_excerpt_is_cut_to_the_configured_length(made, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "TRIGGER_LOGGED_BODY_CHARS": 40}
    body = json.dumps({**BODY, "note": "x" * 500})

    post_capture(made.trigger.pk, body, key=made.api_key)

    assert TriggerRequest.objects.get().body_excerpt == body[:40]


def test_a_rotated_key_works_and_the_old_one_does_not(made):
    new_key = rotate_trigger_key(trigger=made.trigger)

    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 401
    assert post_capture(made.trigger.pk, key=new_key).status_code == 200
    assert Event.objects.count() == 1


# --- errors -----------------------------------------------------------------------------------------


def _assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert body["detail"]
    assert nothing_published()
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": "Basic dTpw"},
    ],
    ids=["none", "empty", "no key", "blank key", "basic"],
)
def test_a_request_without_a_bearer_key_is_401(made, headers):
    response = post_capture(made.trigger.pk, **headers)

    _assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", ["whtrg_wrong", "not-even-a-key"])
def test_a_wrong_key_is_401(made, key):
    response = post_capture(made.trigger.pk, key=key)

    _assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_tenant_api_key_does_not_open_a_trigger(made, tenant):
    response = post_capture(made.trigger.pk, key=create_api_key(tenant=tenant).key)

    _assert_error(response, 401)


def test_another_tenants_trigger_key_does_not_open_ours(made, theirs):
    response = post_capture(made.trigger.pk, key=theirs.api_key)

    _assert_error(response, 401)


def test_our_key_does_not_open_another_tenants_trigger(made, theirs):
    response = post_capture(theirs.trigger.pk, key=made.api_key)

    _assert_error(response, 401)


def test_an_unknown_trigger_is_404(made):
    response = post_capture("trg_doesnotexist", key=made.api_key)

    _assert_error(response, 404)


def test_a_disabled_trigger_is_404_even_with_its_key(tenant):
    created = make_trigger(tenant, enabled=False)

    response = post_capture(created.trigger.pk, key=created.api_key)

    _assert_error(response, 404)


@pytest.mark.parametrize("trigger_id", ["trg_%00nul", "x" * 300, "trg_%C3%A9"], ids=["nul", "long", "non-ascii"])
def test_a_malformed_trigger_id_is_404(made, trigger_id):
    response = post_capture(trigger_id, key=made.api_key)

    _assert_error(response, 404)


def test_a_trigger_whose_event_type_was_archived_publishes_nothing(made):
    EventType.objects.filter(pk=EVENT_TYPE).update(archived=True)

    response = post_capture(made.trigger.pk, key=made.api_key)

    _assert_error(response, 400)
    assert TriggerRequest.objects.get().outcome == TriggerOutcome.REJECTED


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", json.dumps(BODY)),
        ("application/x-www-form-urlencoded", "contact=1"),
        ("application/jsonx", json.dumps(BODY)),
        ("application/xml", "<contact/>"),
    ],
)
def test_a_body_that_is_not_declared_json_is_415(made, content_type, data):
    response = post_capture(made.trigger.pk, data, key=made.api_key, content_type=content_type)

    _assert_error(response, 415)


@pytest.mark.parametrize(
    "data",
    ["{", "   ", "{'single': 'quotes'}", '{"a": 1} trailing', b"\xff\xfe{}", "nul\x00"],
    ids=["truncated", "blank", "single quotes", "trailing", "not utf-8", "nul"],
)
def test_invalid_json_is_400_naming_the_body(made, data):
    response = post_capture(made.trigger.pk, data, key=made.api_key)

    body = _assert_error(response, 400)
    assert list(body["errors"]) == ["body"]


@pytest.mark.parametrize("data", [[BODY], '"text"', "1", "null", "true"])
def test_json_that_is_not_an_object_is_400(made, data):
    response = post_capture(made.trigger.pk, data, key=made.api_key)

    body = _assert_error(response, 400)
    assert list(body["errors"]) == ["body"]


@pytest.mark.parametrize(
    "body",
    [
        {"note": "no contact"},
        {"contact": {"name": "Bo"}},
        {"contact": {"phone": None}},
        {"contact": {"phone": ""}},
    ],
    ids=["no parent", "absent", "null", "empty"],
)
def test_a_missing_identifier_is_400_naming_the_field(made, body):
    response = post_capture(made.trigger.pk, body, key=made.api_key)

    error = _assert_error(response, 400)
    assert list(error["errors"]) == ["contact.phone"]
    assert "contact.phone" in error["detail"]


def test_a_body_over_the_size_cap_is_413(made, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 300}

    response = post_capture(made.trigger.pk, {**BODY, "note": "x" * 300}, key=made.api_key)

    _assert_error(response, 413)


def test_a_body_under_the_cap_whose_event_would_exceed_it_is_413(made, settings):
    body = json.dumps(BODY)
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": len(body) + 10}

    response = post_capture(made.trigger.pk, body, key=made.api_key)

    _assert_error(response, 413)


@pytest.mark.parametrize(
    "data",
    [
        '{"contact": {"phone": "+1"}, "ratio": NaN}',
        '{"contact": {"phone": "+1"}, "big": Infinity}',
        '{"contact": {"phone": "+1"}, "text": "\\u0000"}',
        '{"contact": {"phone": "+1"}, "text": "\\ud800"}',
    ],
    ids=["NaN", "Infinity", "NUL", "lone surrogate"],
)
def test_json_that_cannot_be_stored_is_400(made, data):
    response = post_capture(made.trigger.pk, data, key=made.api_key)

    _assert_error(response, 400)


def test_json_nested_too_deeply_is_a_json_error_not_a_crash(made):
    data = '{"contact": {"phone": "+1"}, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert len(data) < setting("MAX_PAYLOAD_BYTES")  # within the size limit: it is parsed, not refused as too large

    response = post_capture(made.trigger.pk, data, key=made.api_key)

    body = _assert_error(response, 400)
    assert body["detail"].startswith("The body is not valid JSON: maximum recursion depth exceeded")
    assert body["errors"] == {"body": [body["detail"].removeprefix("The body is not valid JSON: ")]}


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_methods_other_than_post_are_405(made, method):
    response = getattr(Client(), method)(
        capture_url(made.trigger.pk), headers={"Authorization": f"Bearer {made.api_key}"}
    )

    _assert_error(response, 405)
    assert response["Allow"] == "POST"


# --- the log of refused requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda made: post_capture(made.trigger.pk, "a=1", key=made.api_key, content_type="text/plain"), 415),
        (lambda made: post_capture(made.trigger.pk, "{", key=made.api_key), 400),
        (lambda made: post_capture(made.trigger.pk, {"note": "x"}, key=made.api_key), 400),
    ],
    ids=["not json", "invalid json", "no identifier"],
)
def test_refused_requests_to_a_trigger_are_logged_as_rejected(made, send, status):
    response = send(made)

    [logged] = TriggerRequest.objects.filter(trigger=made.trigger)
    assert (logged.status_code, logged.outcome, logged.event_id) == (status, TriggerOutcome.REJECTED, None)
    assert logged.detail == response.json()["detail"]
    assert logged.source_ip == "127.0.0.1"


def test_the_excerpt_of_a_refused_body_is_logged(made):
    post_capture(made.trigger.pk, {"note": "no identifier here"}, key=made.api_key)

    assert TriggerRequest.objects.get().body_excerpt == json.dumps({"note": "no identifier here"})


def test_a_wrong_key_is_refused_without_writing_to_the_log(made):
    # Anyone who knows a trigger's URL could otherwise fill its log.
    response = post_capture(made.trigger.pk, key="whtrg_wrong")

    _assert_error(response, 401)
    assert not TriggerRequest.objects.exists()


def test_another_tenants_trigger_refuses_this_key_and_logs_nothing(made, theirs):
    response = post_capture(theirs.trigger.pk, key=made.api_key)

    _assert_error(response, 401)
    assert not TriggerRequest.objects.exists()


# --- request edge cases (from the review) -------------------------------------------------------------


def test_a_body_without_content_length_is_411_and_publishes_nothing(made):
    client = Client()
    request = client.request(
        REQUEST_METHOD="POST",
        PATH_INFO=capture_url(made.trigger.pk),
        CONTENT_TYPE="application/json",
        HTTP_AUTHORIZATION=f"Bearer {made.api_key}",
        **{"wsgi.input": FakePayload(json.dumps(BODY).encode())},
    )

    _assert_error(request, 411)
    assert nothing_published()


def test_a_content_length_that_is_not_a_number_is_400(made):
    response = post_capture(made.trigger.pk, key=made.api_key, CONTENT_LENGTH="12abc")

    _assert_error(response, 400)
    assert nothing_published()


def test_a_body_repeating_a_key_is_400_naming_it(made):
    response = post_capture(made.trigger.pk, '{"contact": {"phone": "+1"}, "contact": {}}', key=made.api_key)

    assert "'contact'" in _assert_error(response, 400)["detail"]
    assert nothing_published()


def test_an_integer_too_long_to_convert_is_400_not_500(made):
    response = post_capture(made.trigger.pk, '{"n": ' + "9" * 5000 + "}", key=made.api_key)

    _assert_error(response, 400)
    assert nothing_published()


def test_an_empty_key_in_the_sample_is_not_offered_as_a_path(tenant):
    created = make_trigger(tenant, sample={"id": "1", "a": {"": 1}}, identifier="id", mapping={})

    assert created.trigger.sample_paths == ["id", "a"]


def test_logged_requests_older_than_the_retention_are_pruned(made, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "TRIGGER_LOG_RETENTION_DAYS": 30}
    post_capture(made.trigger.pk, key=made.api_key)
    post_capture(made.trigger.pk, {"note": "no identifier"}, key=made.api_key)
    old, recent = TriggerRequest.objects.order_by("id")
    TriggerRequest.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=31))

    assert prune_trigger_requests(now=timezone.now(), force=True) == 1
    assert list(TriggerRequest.objects.values_list("pk", flat=True)) == [recent.pk]


# --- ordering keys --------------------------------------------------------------------------------------

KEYED_SAMPLE = {**BODY, "conversation": {"id": "c0"}}


def _keyed_trigger(tenant, **fields):
    return make_trigger(tenant, sample=KEYED_SAMPLE, ordering_key_path="conversation.id", **fields)


@pytest.mark.parametrize(("value", "key"), [("c1", "c1"), (42, "42")], ids=["string", "integer"])
def test_the_value_at_the_ordering_key_path_becomes_the_events_ordering_key(tenant, value, key):
    created = _keyed_trigger(tenant)

    response = post_capture(created.trigger.pk, {**BODY, "conversation": {"id": value}}, key=created.api_key)

    assert response.status_code == 200, response.content
    assert Event.objects.get().ordering_key == key


def test_the_ordering_key_path_wins_over_the_event_types_default(tenant):
    created = _keyed_trigger(tenant, mapping={"contact.phone": "id"})  # contact.*: the default key is data.id

    post_capture(created.trigger.pk, {**BODY, "conversation": {"id": "c1"}}, key=created.api_key)

    event = Event.objects.get()
    assert (event.data["id"], event.ordering_key) == ("+15555550999", "c1")


def test_without_an_ordering_key_path_the_event_types_default_applies(tenant):
    created = make_trigger(tenant, mapping={"contact.phone": "id"})

    post_capture(created.trigger.pk, {**BODY, "conversation": {"id": "c1"}}, key=created.api_key)

    assert created.trigger.ordering_key_path == ""
    assert Event.objects.get().ordering_key == "+15555550999"


def test_a_request_missing_the_ordering_key_path_is_400_logged_and_publishes_nothing(tenant):
    created = _keyed_trigger(tenant)
    post_capture(created.trigger.pk, {**BODY, "conversation": {"id": "c1"}}, key=created.api_key)
    events_before = Event.objects.count()

    response = post_capture(created.trigger.pk, BODY, key=created.api_key)

    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body["errors"]) == ["conversation.id"]
    assert body["detail"] == "The ordering key 'conversation.id' is missing in the request body."
    assert Event.objects.count() == events_before == 1
    logged = TriggerRequest.objects.get(status_code=400)
    assert (logged.outcome, logged.event_id, logged.detail) == (TriggerOutcome.REJECTED, None, body["detail"])


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "must be a string or an integer, not true"),
        (None, "must be a string or an integer, not null"),
        (1.5, "must be a string or an integer, not 1.5"),
        ({"id": "c1"}, "must be a string or an integer"),
        (["c1"], "must be a string or an integer"),
        ("", "non-empty"),
        ("c" * 201, "at most 200 characters"),
        ("c\n1", "printable"),
        (10**201, "at most 200 characters"),
    ],
    ids=["bool", "null", "float", "object", "array", "empty", "too long", "newline", "integer too long"],
)
def test_an_unusable_ordering_key_is_400_naming_the_path_and_publishes_nothing(tenant, value, shown):
    created = _keyed_trigger(tenant)

    response = post_capture(created.trigger.pk, {**BODY, "conversation": {"id": value}}, key=created.api_key)

    body = _assert_error(response, 400)
    assert list(body["errors"]) == ["conversation.id"]
    assert shown in body["detail"]
    assert TriggerRequest.objects.get().outcome == TriggerOutcome.REJECTED
