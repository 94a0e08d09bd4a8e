"""/api/v1/triggers/: create (key shown once), list, read, update, delete, key rotation, paths and the request log."""

import hashlib
import json

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from events.models import Event, EventType, Trigger, TriggerRequest
from events.triggers import log_request
from tests.web.api.support import key_client, results, session_client, superuser_client
from tests.web.triggers.support import (
    BODY,
    EVENT_TYPE,
    IDENTIFIER,
    MAPPING,
    SAMPLE,
    TRIGGERS,
    detail,
    make_trigger,
    post_capture,
    trigger_state,
)

pytestmark = pytest.mark.django_db

SAMPLE_PATHS = [
    "contact",
    "contact.phone",
    "contact.name",
    "items",
    "items[0]",
    "items[0].sku",
    "items[0].qty",
    "items[1]",
    "items[1].sku",
    "items[1].qty",
    "note",
]
NEW = {"name": "crm", "event_type": EVENT_TYPE, "sample": SAMPLE, "identifier": IDENTIFIER, "mapping": MAPPING}


def _create(client, **fields):
    return client.post(TRIGGERS, {**NEW, **fields}, format="json")


# --- create -----------------------------------------------------------------------------------------


def test_create_answers_201_with_id_url_and_the_key(admin, tenant):
    response = _create(admin)

    assert response.status_code == 201, response.content
    body = response.json()
    trigger = Trigger.objects.get(pk=body["id"])
    assert body["url"] == f"http://testserver/triggers/{trigger.pk}"
    assert body["api_key"].startswith("whtrg_") and len(body["api_key"]) > 40
    assert body["key_prefix"] == body["api_key"][: len(body["key_prefix"])]
    assert (body["name"], body["event_type"], body["enabled"]) == ("crm", EVENT_TYPE, True)
    assert (body["sample"], body["identifier"], body["mapping"]) == (SAMPLE, IDENTIFIER, MAPPING)
    assert (body["rate_limit_per_minute"], body["ordering_key_path"]) == (None, "")
    assert (trigger.tenant, trigger.name, trigger.event_type_id) == (tenant, "crm", EVENT_TYPE)
    assert (trigger.sample, trigger.identifier, trigger.mapping) == (SAMPLE, IDENTIFIER, MAPPING)


def test_the_key_is_stored_only_as_its_hash(admin):
    body = _create(admin).json()

    stored = Trigger.objects.get(pk=body["id"])
    assert stored.hashed_key == hashlib.sha256(body["api_key"].encode()).hexdigest()
    columns = [str(value) for value in Trigger.objects.filter(pk=stored.pk).values().get().values()]
    assert body["api_key"] not in columns


def test_the_url_and_key_of_a_created_trigger_capture_a_request(admin):
    body = _create(admin).json()

    response = APIClient().post(body["url"], BODY, format="json", HTTP_AUTHORIZATION=f"Bearer {body['api_key']}")

    assert response.status_code == 200, response.content


def test_the_key_is_never_shown_again(admin):
    created = _create(admin).json()

    read = admin.get(detail(created["id"]))
    listed = admin.get(TRIGGERS)

    for response in (read, listed):
        assert response.status_code == 200
        assert "api_key" not in response.content.decode()
        assert created["api_key"].encode() not in response.content
        assert Trigger.objects.get().hashed_key.encode() not in response.content


def test_create_takes_enabled_and_a_rate_limit(admin):
    response = _create(admin, enabled=False, rate_limit_per_minute=30)

    assert response.status_code == 201
    trigger = Trigger.objects.get(pk=response.json()["id"])
    assert (trigger.enabled, trigger.rate_limit_per_minute) == (False, 30)


def test_create_without_a_mapping_keeps_everything_unmapped(admin):
    response = admin.post(TRIGGERS, {k: v for k, v in NEW.items() if k != "mapping"}, format="json")

    assert response.status_code == 201, response.content
    assert Trigger.objects.get().mapping == {}


def test_create_records_who_made_it_for_session_users(tenant):
    client = session_client(tenant, Role.ADMIN)

    response = _create(client)

    assert response.status_code == 201
    assert Trigger.objects.get().created_by is not None


def test_two_triggers_get_different_keys(admin):
    first, second = _create(admin).json(), _create(admin, name="second").json()

    assert first["api_key"] != second["api_key"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mapping": {"contact.email": "email"}}, "mapping"),
        ({"mapping": {"contact.phone": "1phone"}}, "mapping"),
        ({"mapping": {"contact.phone": "unmapped"}}, "mapping"),
        ({"mapping": {"note": "identifier"}}, "mapping"),
        ({"mapping": {"contact.phone": "phone", "note": "phone"}}, "mapping"),
        ({"mapping": ["contact.phone"]}, "mapping"),
        ({"identifier": "contact.email"}, "identifier"),
        ({"identifier": "contact..phone"}, "identifier"),
        ({"identifier": ""}, "identifier"),
        ({"ordering_key_path": "conversation.id"}, "ordering_key_path"),
        ({"ordering_key_path": "contact"}, "ordering_key_path"),
        ({"ordering_key_path": "contact..phone"}, "ordering_key_path"),
        ({"ordering_key_path": None}, "ordering_key_path"),
        ({"ordering_key_path": "p" * 501}, "ordering_key_path"),
        ({"sample": ["not", "an", "object"]}, "sample"),
        ({"sample": "text"}, "sample"),
        ({"sample": None}, "sample"),
        ({"event_type": "no.such_type"}, "event_type"),
        ({"event_type": ""}, "event_type"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": "many"}, "rate_limit_per_minute"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else value,
)
def test_bad_create_is_400_naming_the_field_and_creates_nothing(admin, fields, field):
    before = trigger_state()

    response = _create(admin, **fields)

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(name == field or name.startswith(field + ".") for name in errors), errors
    assert trigger_state() == before


@pytest.mark.parametrize("missing", ["name", "event_type", "sample", "identifier"])
def test_create_without_a_required_field_is_400(admin, missing):
    response = admin.post(TRIGGERS, {k: v for k, v in NEW.items() if k != missing}, format="json")

    assert response.status_code == 400
    assert missing in response.json()["errors"]
    assert not Trigger.objects.exists()


def test_a_path_the_sample_lacks_is_named_in_the_error(admin):
    response = _create(admin, mapping={"contact.email": "email"})

    assert response.json()["errors"]["mapping"] == ["'contact.email' is not a path of the sample."]


def test_create_takes_an_ordering_key_path_and_captures_use_it(admin):
    response = _create(admin, sample={**SAMPLE, "conversation": {"id": "c0"}}, ordering_key_path="conversation.id")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["ordering_key_path"] == "conversation.id"
    assert Trigger.objects.get().ordering_key_path == "conversation.id"
    post_capture(created["id"], {**BODY, "conversation": {"id": "c1"}}, key=created["api_key"])
    assert Event.objects.get().ordering_key == "c1"


def test_an_ordering_key_path_the_sample_lacks_is_named_in_the_error(admin):
    response = _create(admin, ordering_key_path="conversation.id")

    assert response.json()["errors"] == {"ordering_key_path": ["'conversation.id' is not a path of the sample."]}
    assert not Trigger.objects.exists()


def test_an_archived_event_type_is_refused(admin):
    EventType.objects.filter(pk="contact.updated").update(archived=True)

    response = _create(admin, event_type="contact.updated")

    assert response.status_code == 400
    assert "event_type" in response.json()["errors"]
    assert not Trigger.objects.exists()


def test_superuser_must_name_the_tenant_to_create(tenant):
    client = superuser_client()

    refused = _create(client)
    created = client.post(TRIGGERS, NEW, format="json", HTTP_X_TENANT=tenant.slug)

    assert refused.status_code == 400 and "tenant" in refused.json()["errors"]
    assert created.status_code == 201
    assert Trigger.objects.get().tenant == tenant


# --- list and read ----------------------------------------------------------------------------------


def test_list_shows_the_tenants_triggers_newest_first(admin, tenant, theirs):
    older = make_trigger(tenant, name="older").trigger
    newer = make_trigger(tenant, name="newer").trigger

    response = admin.get(TRIGGERS)

    assert response.status_code == 200
    assert [row["id"] for row in results(response)] == [newer.pk, older.pk]


@pytest.mark.parametrize(("query", "names"), [("enabled=false", ["off"]), (f"event_type={EVENT_TYPE}", ["on"])])
def test_list_filters_by_enabled_and_event_type(admin, tenant, query, names):
    make_trigger(tenant, name="off", enabled=False, event_type="message.received")
    make_trigger(tenant, name="on")

    response = admin.get(f"{TRIGGERS}?{query}")

    assert [row["name"] for row in results(response)] == names


def test_read_shows_the_trigger_its_url_and_available_paths(admin, made):
    response = admin.get(detail(made.trigger.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == made.trigger.pk
    assert body["url"] == f"http://testserver/triggers/{made.trigger.pk}"
    assert sorted(body["available_paths"]) == sorted(SAMPLE_PATHS)
    assert body["key_prefix"] == made.api_key[: len(body["key_prefix"])]


def test_read_lists_the_available_paths_in_the_samples_order(admin, made):
    """As ``paths/`` lists them before creating: the order of the sample that was sent."""
    listed_before = admin.post(TRIGGERS + "paths/", {"sample": SAMPLE}, format="json").json()["paths"]

    response = admin.get(detail(made.trigger.pk))

    assert listed_before == SAMPLE_PATHS
    assert response.json()["available_paths"] == SAMPLE_PATHS


@pytest.mark.parametrize("suffix", ["", "requests/"])
def test_a_malformed_trigger_id_in_the_api_is_404(admin, suffix):
    response = admin.get(f"{TRIGGERS}trg_%00nul/{suffix}")

    assert response.status_code == 404


# --- update -----------------------------------------------------------------------------------------


def test_patch_changes_only_what_is_given(admin, made):
    response = admin.patch(
        detail(made.trigger.pk), {"name": "renamed", "enabled": False, "rate_limit_per_minute": 5}, format="json"
    )

    assert response.status_code == 200, response.content
    trigger = Trigger.objects.get(pk=made.trigger.pk)
    assert (trigger.name, trigger.enabled, trigger.rate_limit_per_minute) == ("renamed", False, 5)
    assert (trigger.sample, trigger.mapping, trigger.identifier) == (SAMPLE, MAPPING, IDENTIFIER)
    assert trigger.hashed_key == made.trigger.hashed_key
    assert response.json()["name"] == "renamed"
    assert "api_key" not in response.json()


def test_patch_changes_the_mapping_and_captures_use_it(admin, made):
    response = admin.patch(detail(made.trigger.pk), {"mapping": {"note": "memo"}}, format="json")

    assert response.status_code == 200, response.content
    post_capture(made.trigger.pk, key=made.api_key)

    assert Event.objects.get().data["memo"] == "urgent"


def test_patch_with_a_new_sample_and_mapping_is_checked_together(admin, made):
    response = admin.patch(
        detail(made.trigger.pk),
        {"sample": {"ref": "r-1", "who": {"email": "a@b.c"}}, "identifier": "ref", "mapping": {"who.email": "email"}},
        format="json",
    )

    assert response.status_code == 200, response.content
    trigger = Trigger.objects.get(pk=made.trigger.pk)
    assert (trigger.identifier, trigger.mapping) == ("ref", {"who.email": "email"})


def test_patch_sets_and_clears_the_ordering_key_path(admin, made):
    set_ = admin.patch(detail(made.trigger.pk), {"ordering_key_path": "contact.name"}, format="json")
    stored = Trigger.objects.get(pk=made.trigger.pk).ordering_key_path
    cleared = admin.patch(detail(made.trigger.pk), {"ordering_key_path": ""}, format="json")

    assert (set_.status_code, set_.json()["ordering_key_path"], stored) == (200, "contact.name", "contact.name")
    assert (cleared.status_code, cleared.json()["ordering_key_path"]) == (200, "")
    assert Trigger.objects.get(pk=made.trigger.pk).ordering_key_path == ""


def test_patch_with_a_sample_lacking_the_kept_ordering_key_path_is_400_and_changes_nothing(admin, tenant):
    trigger = make_trigger(tenant, ordering_key_path="contact.name").trigger
    before = trigger_state()

    response = admin.patch(detail(trigger.pk), {"sample": {"contact": {"phone": "+1"}}, "mapping": {}}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"ordering_key_path": ["'contact.name' is not a path of the sample."]}
    assert trigger_state() == before


def test_patch_may_clear_the_rate_limit(admin, tenant):
    trigger = make_trigger(tenant, rate_limit_per_minute=9).trigger

    response = admin.patch(detail(trigger.pk), {"rate_limit_per_minute": None}, format="json")

    assert response.status_code == 200
    assert Trigger.objects.get(pk=trigger.pk).rate_limit_per_minute is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mapping": {"contact.email": "email"}}, "mapping"),
        ({"sample": {"other": 1}}, "mapping"),  # the kept mapping no longer fits the new sample
        ({"sample": {"contact": {"name": "Ana"}}, "mapping": {}}, "identifier"),
        ({"identifier": "nope"}, "identifier"),
        ({"ordering_key_path": "nope"}, "ordering_key_path"),
        ({"ordering_key_path": "items"}, "ordering_key_path"),
        ({"sample": []}, "sample"),
        ({"event_type": "no.such_type"}, "event_type"),
        ({"name": ""}, "name"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else value,
)
def test_bad_patch_is_400_naming_the_field_and_changes_nothing(admin, made, fields, field):
    before = trigger_state()

    response = admin.patch(detail(made.trigger.pk), fields, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert trigger_state() == before


def test_put_is_not_allowed(admin, made):
    before = trigger_state()

    response = admin.put(detail(made.trigger.pk), NEW, format="json")

    assert response.status_code == 405
    assert trigger_state() == before


# --- delete and rotate ------------------------------------------------------------------------------


def test_delete_removes_the_trigger_and_its_url_stops_answering(admin, made):
    post_capture(made.trigger.pk, key=made.api_key)

    response = admin.delete(detail(made.trigger.pk))

    assert response.status_code == 204
    assert not Trigger.objects.filter(pk=made.trigger.pk).exists()
    assert not TriggerRequest.objects.exists()
    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 404


def test_rotate_key_returns_a_new_key_and_the_old_one_stops_working(admin, made):
    response = admin.post(detail(made.trigger.pk) + "rotate-key/")

    assert response.status_code == 200
    new_key = response.json()["api_key"]
    assert new_key.startswith("whtrg_") and new_key != made.api_key
    stored = Trigger.objects.get(pk=made.trigger.pk)
    assert stored.hashed_key == hashlib.sha256(new_key.encode()).hexdigest()
    assert stored.key_prefix == new_key[: len(stored.key_prefix)]
    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 401
    assert post_capture(made.trigger.pk, key=new_key).status_code == 200


# --- paths ------------------------------------------------------------------------------------------


def test_paths_lists_the_paths_of_a_sample(admin):
    response = admin.post(
        TRIGGERS + "paths/", {"sample": {"contact": {"phone": "+1"}, "items": [{"sku": "A"}]}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"paths": ["contact", "contact.phone", "items", "items[0]", "items[0].sku"]}


@pytest.mark.parametrize(
    "body",
    [{"sample": [1, 2]}, {"sample": "text"}, {"sample": None}, {}, {"sample": {f"k{n}": n for n in range(2001)}}],
    ids=["array", "string", "null", "missing", "too many paths"],
)
def test_paths_of_something_that_is_not_an_object_is_400(admin, body):
    response = admin.post(TRIGGERS + "paths/", body, format="json")

    assert response.status_code == 400
    assert "sample" in response.json()["errors"]


def test_paths_writes_nothing(admin, made):
    before = trigger_state()

    admin.post(TRIGGERS + "paths/", {"sample": SAMPLE}, format="json")

    assert trigger_state() == before


# --- the request log --------------------------------------------------------------------------------


def test_requests_lists_what_the_trigger_received_newest_first(admin, made):
    post_capture(made.trigger.pk, key=made.api_key)
    post_capture(made.trigger.pk, {"note": "no identifier"}, key=made.api_key)

    response = admin.get(detail(made.trigger.pk) + "requests/")

    assert response.status_code == 200
    rows = results(response)
    assert [row["status_code"] for row in rows] == [400, 200]
    refused, captured = rows
    assert captured["outcome"] == "captured" and captured["event"] == Event.objects.get().pk
    assert refused["outcome"] == "rejected" and refused["event"] is None
    assert "contact.phone" in refused["detail"]
    assert refused["body_excerpt"] == '{"note": "no identifier"}'
    assert {row["source_ip"] for row in rows} == {"127.0.0.1"}
    assert all(row["received_at"] for row in rows)


def test_requests_shows_only_this_triggers_requests(admin, tenant, made):
    sibling = make_trigger(tenant, name="sibling")
    post_capture(sibling.trigger.pk, key=sibling.api_key)

    response = admin.get(detail(made.trigger.pk) + "requests/")

    assert results(response) == []


def test_requests_are_paged(admin, made):
    for n in range(55):
        log_request(trigger=made.trigger, status_code=401, detail=f"n{n}")

    first = admin.get(detail(made.trigger.pk) + "requests/").json()
    second = admin.get(first["next"]).json()

    assert len(first["results"]) == 50 and len(second["results"]) == 5
    assert {row["id"] for row in first["results"]}.isdisjoint(row["id"] for row in second["results"])


# --- who may call what ------------------------------------------------------------------------------

OBJECT_CALLS = {
    "read": ("get", "", None),
    "patch": ("patch", "", {"name": "hijacked", "enabled": False}),
    "delete": ("delete", "", None),
    "rotate": ("post", "rotate-key/", None),
    "requests": ("get", "requests/", None),
}
CALLS = {
    "list": ("get", None, None),
    "create": ("post", None, NEW),
    "paths": ("post", "paths/", {"sample": SAMPLE}),
    **OBJECT_CALLS,
}


def _call(client, name: str, trigger_id: str):
    method, suffix, body = CALLS[name]
    if name in OBJECT_CALLS:
        path = detail(trigger_id) + suffix
    else:
        path = TRIGGERS + (suffix or "")
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


NOT_ADMIN = {
    "manager key": lambda tenant: key_client(tenant, Role.MANAGER),
    "user key": lambda tenant: key_client(tenant, Role.USER),
    "session manager": lambda tenant: session_client(tenant, Role.MANAGER),
    "session user": lambda tenant: session_client(tenant, Role.USER),
}


@pytest.mark.parametrize("caller", list(NOT_ADMIN))
@pytest.mark.parametrize("call", list(CALLS))
def test_managers_and_users_get_403_and_change_nothing(tenant, made, caller, call):
    client = NOT_ADMIN[caller](tenant)
    before = trigger_state()

    response = _call(client, call, made.trigger.pk)

    assert response.status_code == 403, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert trigger_state() == before


@pytest.mark.parametrize(
    "client",
    [
        lambda: APIClient(),
        lambda: APIClient(HTTP_AUTHORIZATION="Bearer whk_" + "x" * 43),
    ],
    ids=["anonymous", "unknown key"],
)
@pytest.mark.parametrize("call", list(CALLS))
def test_calls_without_credentials_get_401_and_change_nothing(made, client, call):
    before = trigger_state()

    response = _call(client(), call, made.trigger.pk)

    assert response.status_code == 401, response.content
    assert trigger_state() == before


@pytest.mark.parametrize("call", list(CALLS))
def test_a_trigger_key_is_not_an_api_key(made, call):
    before = trigger_state()

    response = _call(APIClient(HTTP_AUTHORIZATION=f"Bearer {made.api_key}"), call, made.trigger.pk)

    assert response.status_code == 401
    assert trigger_state() == before


@pytest.mark.parametrize(
    "caller",
    [lambda tenant: key_client(tenant), lambda tenant: session_client(tenant, Role.ADMIN)],
    ids=["admin key", "session admin"],
)
@pytest.mark.parametrize("call", list(OBJECT_CALLS))
def test_another_tenants_admin_gets_404_on_our_trigger_and_changes_nothing(made, other_tenant, caller, call):
    client = caller(other_tenant)
    before = trigger_state()

    response = _call(client, call, made.trigger.pk)

    assert response.status_code == 404, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert made.api_key.encode() not in response.content
    assert trigger_state() == before
    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 200


def test_another_tenants_admin_lists_only_their_triggers(made, theirs, other_tenant):
    response = key_client(other_tenant).get(TRIGGERS)

    assert [row["id"] for row in results(response)] == [theirs.trigger.pk]


def test_creating_as_another_tenants_admin_writes_to_their_tenant(made, other_tenant):
    response = _create(key_client(other_tenant))

    assert response.status_code == 201
    assert Trigger.objects.get(pk=response.json()["id"]).tenant == other_tenant
    assert Trigger.objects.get(pk=made.trigger.pk).tenant_id == made.trigger.tenant_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample", {"contact": {"phone": "+1555\u0000"}}),
        ("sample", {"contact\u0000": {"phone": "+1555"}}),
        ("sample", {"contact": {"phone": "\ud800"}}),
        ("ordering_key_path", "contact.name\u0000"),
        ("ordering_key_path", "contact.\ud800"),
    ],
    ids=["nul in a value", "nul in a key", "lone surrogate", "nul in the key path", "lone surrogate in the key path"],
)
def test_text_the_database_cannot_store_is_a_400_naming_the_field(admin, field, value):
    before = trigger_state()

    # Sent as ASCII JSON with escapes (\u0000, \ud800), as a client's serializer would send them.
    body = json.dumps({**NEW, field: value})
    response = admin.post(TRIGGERS, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert trigger_state() == before
