"""/api/v1/endpoints/: the body settings (payload_format, payload_shape, verification), the Heymarket verification
token (in full once, masked after), its rotation, and who may change them."""

import pytest

from accounts.models import Role
from ground.crypto import mask
from subscriptions.models import Endpoint
from subscriptions.payloads import MAX_SHAPE_CHARS, heymarket_webhook_id
from tests.factories import URL, endpoint_for
from tests.support.db import db_state
from tests.web.api.support import API, key_client, results, session_client

pytestmark = pytest.mark.django_db

ENDPOINTS = API + "/endpoints/"
SHAPE = "{event: type, payload: data}"
# Gives an object for the message and chat examples (they have a contact), null for a contact's.
CONTACT_SHAPE = "data.contact && {who: data.contact}"


def _create(client, **fields):
    return client.post(ENDPOINTS, {"url": URL, **fields}, format="json")


def _detail(endpoint_id: str) -> str:
    return f"{ENDPOINTS}{endpoint_id}/"


def _state() -> tuple[dict, dict]:
    """Everything ``db_state`` sees, and each endpoint's body settings and token (which it does not)."""
    payloads = {
        pk: values
        for pk, *values in Endpoint.objects.values_list(
            "pk", "payload_format", "payload_shape", "verification", "verification_token", "updated_at"
        )
    }
    return db_state(), payloads


def _refused(response, field: str, *words: str) -> str:
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    message = errors[field][0]
    for word in words:
        assert word in message, message
    return message


# --- create -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "verification"),
    [
        ({}, "signature"),
        ({"payload_format": "standard"}, "signature"),
        ({"payload_format": "heyy"}, "signature"),
        ({"payload_format": "customertext"}, "signature"),
        ({"payload_format": "custom", "payload_shape": SHAPE}, "signature"),
        ({"payload_format": "heymarket"}, "both"),
        ({"payload_format": "heymarket", "verification": "token"}, "token"),
        ({"payload_format": "heymarket", "verification": "signature"}, "signature"),
    ],
)
def test_create_with_each_format(admin, fields, verification):
    response = _create(admin, **fields)

    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = Endpoint.objects.get(pk=body["id"])
    payload_format = fields.get("payload_format", "standard")
    shape = fields.get("payload_shape", "")
    assert (body["payload_format"], body["payload_shape"], body["verification"]) == (
        payload_format,
        shape,
        verification,
    )
    assert (endpoint.payload_format, endpoint.payload_shape, endpoint.verification) == (
        payload_format,
        shape,
        verification,
    )
    if payload_format == "heymarket":
        assert body["heymarket_webhook_id"] == heymarket_webhook_id(endpoint.pk)
        assert len(endpoint.verification_token) >= 32
        assert body["verification_token"] == endpoint.verification_token  # in full, this once
    else:
        assert body["heymarket_webhook_id"] is None
        assert body["verification_token"] is None
        assert endpoint.verification_token is None


def test_bad_jmespath_syntax_answers_400_naming_payload_shape(admin):
    before = _state()

    response = _create(admin, payload_format="custom", payload_shape="{event: type")

    _refused(response, "payload_shape", "Not a JMESPath expression")
    assert _state() == before


@pytest.mark.parametrize(("shape", "kind"), [("type", "a string"), ("[id, type]", "an array"), ("data.nope", "null")])
def test_a_shape_that_gives_no_object_answers_400_naming_payload_shape(admin, shape, kind):
    before = _state()

    response = _create(admin, payload_format="custom", payload_shape=shape, event_types=["message.received"])

    _refused(response, "payload_shape", "For the example of message.received", f"gave {kind}, not a JSON object")
    assert _state() == before


def test_a_shape_whose_result_is_too_large_answers_400_naming_payload_shape(admin, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 2000}
    shape = "{" + ", ".join(f"k{n}: data" for n in range(12)) + "}"
    before = _state()

    response = _create(admin, payload_format="custom", payload_shape=shape, event_types=["message.received"])

    _refused(response, "payload_shape", "the limit is 2000 bytes")
    assert _state() == before


def test_a_shape_longer_than_the_limit_answers_400_naming_payload_shape(admin):
    shape = "{" + ", ".join(f"k{n}: data" for n in range(MAX_SHAPE_CHARS // 8)) + "}"
    assert len(shape) > MAX_SHAPE_CHARS
    before = _state()

    response = _create(admin, payload_format="custom", payload_shape=shape)

    _refused(response, "payload_shape")
    assert _state() == before


def test_a_custom_format_without_a_shape_answers_400_naming_payload_shape(admin):
    before = _state()

    _refused(_create(admin, payload_format="custom"), "payload_shape", "needs a JMESPath expression")
    assert _state() == before


@pytest.mark.parametrize("payload_format", [None, "standard", "heymarket", "heyy", "customertext"])
def test_a_shape_with_a_format_that_is_not_custom_answers_400(admin, payload_format):
    fields = {"payload_shape": SHAPE} | ({"payload_format": payload_format} if payload_format else {})
    before = _state()

    _refused(_create(admin, **fields), "payload_shape", "Only a custom payload format takes a shape")
    assert _state() == before


@pytest.mark.parametrize("payload_format", [None, "standard", "heyy", "customertext", "custom"])
@pytest.mark.parametrize("verification", ["token", "both"])
def test_a_verification_token_on_an_endpoint_that_is_not_heymarket_answers_400_naming_verification(
    admin, payload_format, verification
):
    fields = {"verification": verification} | ({"payload_format": payload_format} if payload_format else {})
    if payload_format == "custom":
        fields["payload_shape"] = SHAPE
    before = _state()

    _refused(_create(admin, **fields), "verification", "Only the Heymarket format")
    assert _state() == before


def test_an_unknown_format_answers_400_naming_payload_format(admin):
    before = _state()

    _refused(_create(admin, payload_format="zapier"), "payload_format")
    assert _state() == before


def test_an_unknown_verification_answers_400_naming_verification(admin):
    before = _state()

    _refused(_create(admin, payload_format="heymarket", verification="hmac"), "verification")
    assert _state() == before


# --- the heymarket verification token -------------------------------------------------------------------------


def test_the_verification_token_is_in_full_only_in_the_create_response(admin):
    created = _create(admin, payload_format="heymarket", event_types=["message.received"])
    assert created.status_code == 201, created.content
    token = created.json()["verification_token"]
    endpoint_id = created.json()["id"]
    assert token == Endpoint.objects.get(pk=endpoint_id).verification_token

    read = admin.get(_detail(endpoint_id))
    listed = admin.get(ENDPOINTS)
    patched = admin.patch(_detail(endpoint_id), {"description": "still masked"}, format="json")
    reformatted = admin.patch(_detail(endpoint_id), {"verification": "token"}, format="json")

    for response in (read, listed, patched, reformatted):
        assert response.status_code == 200, response.content
        assert token.encode() not in response.content
    assert read.json()["verification_token"] == mask(token) == f"****{token[-4:]}"
    assert results(listed)[0]["verification_token"] == mask(token)
    assert patched.json()["verification_token"] == reformatted.json()["verification_token"] == mask(token)
    assert read.json()["heymarket_webhook_id"] == heymarket_webhook_id(endpoint_id)
    assert Endpoint.objects.get(pk=endpoint_id).verification_token == token  # not reissued


def test_the_first_patch_to_heymarket_answers_the_token_once(admin, tenant):
    endpoint = endpoint_for(tenant)
    assert endpoint.verification_token is None

    switched = admin.patch(_detail(endpoint.pk), {"payload_format": "heymarket"}, format="json")

    assert switched.status_code == 200, switched.content
    endpoint.refresh_from_db()
    token = endpoint.verification_token
    assert token and switched.json()["verification_token"] == token
    assert (switched.json()["payload_format"], switched.json()["verification"]) == ("heymarket", "both")
    assert switched.json()["heymarket_webhook_id"] == heymarket_webhook_id(endpoint.pk)

    again = admin.patch(_detail(endpoint.pk), {"payload_format": "heymarket", "name": "x"}, format="json")
    read = admin.get(_detail(endpoint.pk))

    for response in (again, read):
        assert response.status_code == 200
        assert token.encode() not in response.content
        assert response.json()["verification_token"] == mask(token)


def test_leaving_heymarket_takes_the_signature_again(admin, tenant):
    endpoint = endpoint_for(tenant, payload_format="heymarket", verification="token")

    response = admin.patch(_detail(endpoint.pk), {"payload_format": "heyy"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["payload_format"], response.json()["verification"]) == ("heyy", "signature")
    assert response.json()["heymarket_webhook_id"] is None
    assert endpoint.verification_token.encode() not in response.content


def test_rotate_answers_a_new_token_and_the_old_one_no_longer_appears(admin):
    created = _create(admin, payload_format="heymarket").json()
    old = created["verification_token"]

    rotated = admin.post(_detail(created["id"]) + "rotate-verification-token/")

    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["verification_token"]
    assert set(rotated.json()) == {"verification_token"}
    assert new != old and len(new) >= 32
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert endpoint.verification_token == new
    read = admin.get(_detail(created["id"]))
    listed = admin.get(ENDPOINTS)
    for response in (read, listed):
        assert old.encode() not in response.content and new.encode() not in response.content
    assert read.json()["verification_token"] == mask(new)
    assert results(listed)[0]["verification_token"] == mask(new)

    again = admin.post(_detail(created["id"]) + "rotate-verification-token/").json()["verification_token"]
    assert again not in (old, new)


def test_rotating_the_token_of_an_endpoint_that_is_not_heymarket_answers_400(admin, tenant):
    endpoint = endpoint_for(tenant, payload_format="heyy")
    before = _state()

    response = admin.post(_detail(endpoint.pk) + "rotate-verification-token/")

    _refused(response, "payload_format", "Only a Heymarket endpoint")
    assert _state() == before


# --- patch ------------------------------------------------------------------------------------------------------


def test_a_patch_from_custom_to_standard_drops_the_shape(admin, tenant):
    endpoint = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE)

    response = admin.patch(_detail(endpoint.pk), {"payload_format": "standard"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["payload_format"], response.json()["payload_shape"]) == ("standard", "")
    endpoint.refresh_from_db()
    assert (endpoint.payload_format, endpoint.payload_shape) == ("standard", "")


def test_a_patch_of_the_shape_alone_keeps_the_format_and_checks_the_shape(admin, tenant):
    endpoint = endpoint_for(tenant, payload_format="custom", payload_shape=SHAPE)

    changed = admin.patch(_detail(endpoint.pk), {"payload_shape": "{t: type}"}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["payload_format"], changed.json()["payload_shape"]) == ("custom", "{t: type}")
    before = _state()

    refused = admin.patch(_detail(endpoint.pk), {"payload_shape": "type"}, format="json")

    _refused(refused, "payload_shape", "gave a string")
    assert _state() == before


def test_a_patch_that_changes_event_types_checks_the_shape_against_the_new_types(admin, tenant):
    endpoint = endpoint_for(
        tenant, event_types=["message.received"], payload_format="custom", payload_shape=CONTACT_SHAPE
    )
    before = _state()

    refused = admin.patch(_detail(endpoint.pk), {"event_types": ["message.received", "contact.created"]}, format="json")

    _refused(refused, "payload_shape", "For the example of contact.created", "gave null")
    assert _state() == before

    accepted = admin.patch(_detail(endpoint.pk), {"event_types": ["chat.opened"]}, format="json")

    assert accepted.status_code == 200, accepted.content
    endpoint.refresh_from_db()
    assert (endpoint.event_types, endpoint.payload_shape) == (["chat.opened"], CONTACT_SHAPE)


def test_a_patch_to_custom_with_a_shape_that_does_not_fit_the_types_answers_400(admin, tenant):
    endpoint = endpoint_for(tenant, event_types=["*"])
    before = _state()

    response = admin.patch(
        _detail(endpoint.pk), {"payload_format": "custom", "payload_shape": CONTACT_SHAPE}, format="json"
    )

    _refused(response, "payload_shape", "gave null")
    assert _state() == before


# --- who ----------------------------------------------------------------------------------------------------------


WRITES = [
    pytest.param("patch", "", {"payload_format": "custom", "payload_shape": SHAPE}, id="patch format"),
    pytest.param("patch", "", {"verification": "token"}, id="patch verification"),
    pytest.param("post", "rotate-verification-token/", None, id="rotate token"),
    pytest.param("get", "", None, id="read"),
]


def _call(client, method: str, path: str, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
def test_another_tenants_endpoint_answers_404_and_stays_unchanged(tenant, other_tenant, method, suffix, body):
    endpoint = endpoint_for(tenant, payload_format="heymarket")
    theirs = key_client(other_tenant)
    before = _state()

    response = _call(theirs, method, _detail(endpoint.pk) + suffix, body)

    assert response.status_code == 404, response.content
    assert endpoint.verification_token.encode() not in response.content
    assert _state() == before


CALLERS = {
    "manager key": lambda tenant: key_client(tenant, Role.MANAGER),
    "user key": lambda tenant: key_client(tenant, Role.USER),
    "session manager": lambda tenant: session_client(tenant, Role.MANAGER),
    "session user": lambda tenant: session_client(tenant, Role.USER),
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
def test_managers_and_users_get_403_and_change_nothing(tenant, caller, method, suffix, body):
    endpoint = endpoint_for(tenant, payload_format="heymarket")
    client = CALLERS[caller](tenant)
    before = _state()

    response = _call(client, method, _detail(endpoint.pk) + suffix, body)

    assert response.status_code == 403, response.content
    assert endpoint.verification_token.encode() not in response.content
    assert _state() == before


@pytest.mark.parametrize("caller", list(CALLERS))
def test_managers_and_users_cannot_create_a_heymarket_endpoint(tenant, caller):
    client = CALLERS[caller](tenant)
    before = _state()

    response = _create(client, payload_format="heymarket")

    assert response.status_code == 403, response.content
    assert b"verification_token" not in response.content
    assert _state() == before
