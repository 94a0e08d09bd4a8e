"""The trigger admin: the form checks the mapping against the sample, the key is shown once, paths and requests."""

import hashlib
import json
import re

import pytest

from accounts.models import Role
from events.models import Event, EventType, Trigger, TriggerRequest
from tests.factories import MembershipFactory
from tests.web.admin.support import admin_url, form_errors, messages_shown, shown_ids, staff_client, text
from tests.web.triggers.support import (
    EVENT_TYPE,
    IDENTIFIER,
    MAPPING,
    SAMPLE,
    make_trigger,
    post_capture,
    trigger_state,
)

pytestmark = pytest.mark.django_db

KEY = re.compile(r"whtrg_[A-Za-z0-9_-]{20,}")
TRIGGER = "events_trigger"
REQUESTS = "events_triggerrequest"


def trigger_form(owner, /, **overrides) -> dict:
    """What the trigger add page posts; ``None`` leaves a field out."""
    data = {
        "tenant": owner.pk if owner is not None else None,
        "name": "crm",
        "event_type": EVENT_TYPE,
        "enabled": "on",
        "sample": json.dumps(SAMPLE),
        "identifier": IDENTIFIER,
        "ordering_key_path": "",
        "mapping": json.dumps(MAPPING),
        "rate_limit_per_minute": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def change_form(**overrides) -> dict:
    """What the change page posts (the tenant is read-only there)."""
    return {key: value for key, value in trigger_form(None, **overrides).items() if key != "tenant"}


def _action(client, action: str, *triggers):
    return client.post(
        admin_url(f"{TRIGGER}_changelist"),
        {"action": action, "_selected_action": [trigger.pk for trigger in triggers]},
        follow=True,
    )


def _keys_in(messages: list[str]) -> list[str]:
    return [found for message in messages for found in KEY.findall(message)]


# --- creating ---------------------------------------------------------------------------------------


def test_adding_a_trigger_shows_its_key_once_and_stores_only_the_hash(tenant_admin, tenant):
    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant), follow=True)

    assert response.status_code == 200
    [key] = _keys_in(messages_shown(response))
    trigger = Trigger.objects.get()
    assert (trigger.tenant, trigger.name, trigger.event_type_id, trigger.enabled) == (tenant, "crm", EVENT_TYPE, True)
    assert (trigger.sample, trigger.identifier, trigger.mapping) == (SAMPLE, IDENTIFIER, MAPPING)
    assert trigger.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    assert key not in [str(value) for value in Trigger.objects.filter(pk=trigger.pk).values().get().values()]
    assert trigger.created_by == tenant_admin.user
    assert text(response).count(key) == 1


def test_the_key_shown_on_adding_captures_requests(tenant_admin, tenant):
    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant), follow=True)
    [key] = _keys_in(messages_shown(response))

    assert post_capture(Trigger.objects.get().pk, key=key).status_code == 200


def test_the_key_is_not_shown_on_the_list_or_change_page(tenant_admin, made):
    listing = tenant_admin.get(admin_url(f"{TRIGGER}_changelist"))
    page = tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk))

    for response in (listing, page):
        assert response.status_code == 200
        assert made.trigger.key_prefix in text(response)
        assert made.api_key not in text(response)
        assert made.trigger.hashed_key not in text(response)


def test_adding_a_trigger_with_an_ordering_key_path_saves_it(tenant_admin, tenant):
    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant, ordering_key_path="contact.name"))

    assert response.status_code == 302, form_errors(response)
    assert Trigger.objects.get().ordering_key_path == "contact.name"


def test_adding_without_a_mapping_keeps_everything_unmapped(tenant_admin, tenant):
    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant, mapping=""))

    assert response.status_code == 302
    assert Trigger.objects.get().mapping == {}


@pytest.mark.parametrize(
    ("fields", "field", "shown"),
    [
        (
            {"mapping": json.dumps({"contact.email": "email"})},
            "mapping",
            "'contact.email' is not a path of the sample.",
        ),
        ({"mapping": json.dumps({"contact.phone": "1phone"})}, "mapping", "not a field name"),
        ({"mapping": json.dumps({"contact.phone": "unmapped"})}, "mapping", "is reserved"),
        ({"mapping": json.dumps({"contact.phone": "p", "note": "p"})}, "mapping", "more than one path"),
        ({"mapping": json.dumps(["contact.phone"])}, "mapping", "must be an object"),
        ({"mapping": "{not json"}, "mapping", "Enter a valid JSON"),
        ({"identifier": "contact.email"}, "identifier", "'contact.email' is not a path of the sample."),
        ({"identifier": ""}, "identifier", "required"),
        (
            {"ordering_key_path": "conversation.id"},
            "ordering_key_path",
            "'conversation.id' is not a path of the sample.",
        ),
        ({"ordering_key_path": "items"}, "ordering_key_path", "is an object or array in the sample"),
        ({"sample": json.dumps([1, 2])}, "sample", "must be a JSON object"),
        ({"sample": "{oops"}, "sample", "Enter a valid JSON"),
        ({"event_type": "no.such_type"}, "event_type", "Select a valid choice"),
        ({"name": ""}, "name", "required"),
        ({"rate_limit_per_minute": "-1"}, "rate_limit_per_minute", "greater than or equal to 1"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_trigger_is_a_readable_form_error_and_creates_nothing(tenant_admin, tenant, fields, field, shown):
    before = trigger_state()

    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant, **fields))

    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors, errors
    assert shown in " ".join(errors[field])
    assert trigger_state() == before


@pytest.mark.parametrize("limit", ["0", "1000001"])
def test_a_rate_limit_outside_1_to_1000000_is_a_form_error_and_creates_nothing(tenant_admin, tenant, limit):
    before = trigger_state()

    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant, rate_limit_per_minute=limit))

    assert response.status_code == 200
    assert "rate_limit_per_minute" in form_errors(response)
    assert trigger_state() == before


def test_an_archived_event_type_is_not_offered(tenant_admin, tenant):
    EventType.objects.filter(pk="contact.updated").update(archived=True)

    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant, event_type="contact.updated"))

    assert response.status_code == 200
    assert "event_type" in form_errors(response)
    assert not Trigger.objects.exists()


def test_adding_for_another_tenant_is_a_form_error_and_creates_nothing(tenant_admin, other_tenant):
    before = trigger_state()

    response = tenant_admin.post(admin_url(f"{TRIGGER}_add"), trigger_form(other_tenant))

    assert response.status_code == 200
    assert "Select a valid choice" in str(form_errors(response)["tenant"])
    assert trigger_state() == before


# --- the change page --------------------------------------------------------------------------------


def test_the_change_page_lists_the_available_paths_of_the_sample(tenant_admin, made):
    response = tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk))

    html = text(response)
    for path in ["contact", "contact.phone", "contact.name", "items[0]", "items[0].sku", "items[1].qty", "note"]:
        assert f"<code>{path}</code>" in html


def test_the_change_page_shows_the_url_to_post_to(tenant_admin, made):
    response = tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk))

    assert f"/triggers/{made.trigger.pk}" in text(response)


def test_the_change_page_lists_recent_requests(tenant_admin, made):
    post_capture(made.trigger.pk, key=made.api_key)
    post_capture(made.trigger.pk, {"note": "no identifier"}, key=made.api_key)
    event = Event.objects.get()

    html = text(tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk)))

    assert event.pk in html
    assert "127.0.0.1" in html
    assert "<td>200</td>" in html and "<td>400</td>" in html
    assert "no identifier" in html
    assert admin_url(f"{REQUESTS}_changelist") + f"?trigger__id__exact={made.trigger.pk}" in html


def test_what_the_sample_and_requests_contain_is_escaped_on_the_change_page(tenant_admin, tenant):
    created = make_trigger(tenant, sample={**SAMPLE, "<img src=x onerror=1>": 1})
    post_capture(created.trigger.pk, {"note": "<script>alert(1)</script>"}, key=created.api_key)

    html = text(tenant_admin.get(admin_url(f"{TRIGGER}_change", created.trigger.pk)))

    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror=1>" not in html
    assert "&lt;img src=x onerror=1&gt;" in html


def test_a_trigger_without_requests_says_so(tenant_admin, made):
    html = text(tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk)))

    assert "(none yet)" in html


def test_changing_the_mapping_through_the_form_saves_it_and_keeps_the_key(tenant_admin, made):
    response = tenant_admin.post(
        admin_url(f"{TRIGGER}_change", made.trigger.pk), change_form(mapping=json.dumps({"note": "memo"}))
    )

    assert response.status_code == 302, form_errors(response)
    trigger = Trigger.objects.get(pk=made.trigger.pk)
    assert trigger.mapping == {"note": "memo"}
    assert trigger.hashed_key == made.trigger.hashed_key
    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 200


def test_changing_the_ordering_key_path_through_the_form_saves_it(tenant_admin, made):
    page = tenant_admin.get(admin_url(f"{TRIGGER}_change", made.trigger.pk))
    response = tenant_admin.post(
        admin_url(f"{TRIGGER}_change", made.trigger.pk), change_form(ordering_key_path="items[0].sku")
    )

    assert 'name="ordering_key_path"' in text(page)
    assert response.status_code == 302, form_errors(response)
    assert Trigger.objects.get(pk=made.trigger.pk).ordering_key_path == "items[0].sku"
    post_capture(made.trigger.pk, key=made.api_key)
    assert Event.objects.get().ordering_key == "Z-9"


def test_a_bad_mapping_on_the_change_page_is_a_form_error_and_changes_nothing(tenant_admin, made):
    before = trigger_state()

    response = tenant_admin.post(
        admin_url(f"{TRIGGER}_change", made.trigger.pk), change_form(mapping=json.dumps({"nope": "x"}))
    )

    assert response.status_code == 200
    assert "'nope' is not a path of the sample." in form_errors(response)["mapping"]
    assert trigger_state() == before


def test_the_tenant_of_a_trigger_cannot_be_changed(tenant_admin, tenant, other_tenant, made):
    MembershipFactory(user=tenant_admin.user, tenant=other_tenant, role=Role.ADMIN)

    tenant_admin.post(admin_url(f"{TRIGGER}_change", made.trigger.pk), {**change_form(), "tenant": other_tenant.pk})

    assert Trigger.objects.get(pk=made.trigger.pk).tenant == tenant


# --- actions ----------------------------------------------------------------------------------------


def test_rotate_action_shows_a_new_key_and_the_old_one_stops_working(tenant_admin, made):
    response = _action(tenant_admin, "rotate_key", made.trigger)

    [key] = _keys_in(messages_shown(response))
    assert key != made.api_key
    assert Trigger.objects.get(pk=made.trigger.pk).hashed_key == hashlib.sha256(key.encode()).hexdigest()
    assert post_capture(made.trigger.pk, key=made.api_key).status_code == 401
    assert post_capture(made.trigger.pk, key=key).status_code == 200


def test_rotating_two_triggers_shows_a_key_for_each(tenant_admin, tenant, made):
    second = make_trigger(tenant, name="second")

    response = _action(tenant_admin, "rotate_key", made.trigger, second.trigger)

    keys = _keys_in(messages_shown(response))
    assert len(set(keys)) == 2
    assert {hashlib.sha256(k.encode()).hexdigest() for k in keys} == set(
        Trigger.objects.values_list("hashed_key", flat=True)
    )


@pytest.mark.parametrize(("action", "enabled", "status"), [("disable", False, 404), ("enable", True, 200)])
def test_enable_and_disable_actions(tenant_admin, tenant, action, enabled, status):
    created = make_trigger(tenant, enabled=not enabled)

    response = _action(tenant_admin, action, created.trigger)

    assert f"{action.capitalize()}d 1 trigger(s)." in messages_shown(response)
    assert Trigger.objects.get(pk=created.trigger.pk).enabled is enabled
    assert post_capture(created.trigger.pk, key=created.api_key).status_code == status


# --- the request log --------------------------------------------------------------------------------


def test_the_request_log_filtered_by_trigger_shows_only_its_requests(tenant_admin, tenant, made):
    sibling = make_trigger(tenant, name="sibling")
    post_capture(made.trigger.pk, key=made.api_key)
    post_capture(sibling.trigger.pk, key=sibling.api_key)
    ours = TriggerRequest.objects.get(trigger=made.trigger)

    response = tenant_admin.get(admin_url(f"{REQUESTS}_changelist") + f"?trigger__id__exact={made.trigger.pk}")

    assert response.status_code == 200
    assert shown_ids(text(response), REQUESTS) == {str(ours.pk)}


def test_a_logged_request_shows_time_ip_outcome_event_and_body(tenant_admin, made):
    post_capture(made.trigger.pk, key=made.api_key)
    logged = TriggerRequest.objects.get()

    html = text(tenant_admin.get(admin_url(f"{REQUESTS}_change", logged.pk)))

    assert "127.0.0.1" in html
    assert "Captured" in html
    assert logged.event_id in html
    assert "Bo Chen" in html


def test_logged_requests_cannot_be_added_changed_or_deleted(tenant_admin, made):
    post_capture(made.trigger.pk, key=made.api_key)
    logged = TriggerRequest.objects.get()
    before = trigger_state()

    assert tenant_admin.get(admin_url(f"{REQUESTS}_add")).status_code == 403
    tenant_admin.post(admin_url(f"{REQUESTS}_change", logged.pk), {"status_code": 500})
    assert tenant_admin.post(admin_url(f"{REQUESTS}_delete", logged.pk), {"post": "yes"}).status_code == 403
    assert trigger_state() == before


# --- who may see what -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_managers_and_users_are_refused(tenant, made, role):
    client = staff_client(tenant, role)
    before = trigger_state()

    assert client.get(admin_url(f"{TRIGGER}_changelist")).status_code == 403
    assert client.get(admin_url(f"{TRIGGER}_change", made.trigger.pk)).status_code == 403
    assert client.post(admin_url(f"{TRIGGER}_add"), trigger_form(tenant)).status_code == 403
    assert client.post(admin_url(f"{TRIGGER}_change", made.trigger.pk), change_form(name="x")).status_code == 403
    assert client.get(admin_url(f"{REQUESTS}_changelist")).status_code == 403
    rotate = client.post(
        admin_url(f"{TRIGGER}_changelist"), {"action": "rotate_key", "_selected_action": [made.trigger.pk]}
    )
    assert rotate.status_code == 403
    assert trigger_state() == before


def test_another_tenants_triggers_and_requests_are_not_listed(tenant_admin, made, theirs):
    post_capture(theirs.trigger.pk, key=theirs.api_key)

    triggers = text(tenant_admin.get(admin_url(f"{TRIGGER}_changelist")))
    requests = text(tenant_admin.get(admin_url(f"{REQUESTS}_changelist")))

    assert shown_ids(triggers, TRIGGER) == {made.trigger.pk}
    assert shown_ids(requests, REQUESTS) == set()
    assert theirs.trigger.pk not in triggers + requests


def test_another_tenants_trigger_page_says_it_does_not_exist(tenant_admin, theirs):
    response = tenant_admin.get(admin_url(f"{TRIGGER}_change", theirs.trigger.pk), follow=True)

    assert response.redirect_chain == [(admin_url("index"), 302)]
    assert "doesn’t exist. Perhaps it was deleted?" in text(response)
    assert theirs.trigger.key_prefix not in text(response)


def test_another_tenants_request_page_says_it_does_not_exist(tenant_admin, theirs):
    post_capture(theirs.trigger.pk, key=theirs.api_key)

    response = tenant_admin.get(admin_url(f"{REQUESTS}_change", TriggerRequest.objects.get().pk), follow=True)

    assert response.redirect_chain == [(admin_url("index"), 302)]


@pytest.mark.parametrize("action", ["rotate_key", "disable", "delete_selected"])
def test_actions_on_another_tenants_trigger_change_nothing(tenant_admin, theirs, action):
    before = trigger_state()

    response = tenant_admin.post(
        admin_url(f"{TRIGGER}_changelist"),
        {"action": action, "_selected_action": [theirs.trigger.pk], "post": "yes"},
        follow=True,
    )

    assert _keys_in(messages_shown(response)) == []
    assert trigger_state() == before
    assert post_capture(theirs.trigger.pk, key=theirs.api_key).status_code == 200


def test_changing_another_tenants_trigger_changes_nothing(tenant_admin, theirs):
    before = trigger_state()

    response = tenant_admin.post(admin_url(f"{TRIGGER}_change", theirs.trigger.pk), change_form(name="hijacked"))

    assert response.status_code == 302
    assert response["Location"] == admin_url("index")
    assert trigger_state() == before


def test_superuser_sees_every_tenants_triggers(superuser, made, theirs):
    html = text(superuser.get(admin_url(f"{TRIGGER}_changelist")))

    assert shown_ids(html, TRIGGER) == {made.trigger.pk, theirs.trigger.pk}


def test_the_add_form_starts_with_empty_json_fields_not_null(tenant_admin):
    response = tenant_admin.get(admin_url(f"{TRIGGER}_add"))

    assert response.status_code == 200
    sample = re.search(r'<textarea name="sample"[^>]*>(.*?)</textarea>', text(response), re.S)
    assert sample is not None and sample.group(1).strip() == ""
    assert ">null</textarea>" not in text(response)
