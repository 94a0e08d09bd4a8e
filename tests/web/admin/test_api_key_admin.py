"""The API key admin (key shown once, only its hash stored) and the event-type catalog admin."""

import hashlib
import re

import pytest

from accounts.models import ApiKey, Role
from accounts.services import authenticate_api_key, create_api_key
from events.models import EventType
from tests.support.db import db_state
from tests.web.admin.support import admin_url, form_errors, messages_shown, staff_client, text

pytestmark = pytest.mark.django_db

KEY = re.compile(r"whk_[A-Za-z0-9_-]{20,}")


def _add_key(client, tenant, /, **fields):
    data = {"tenant": tenant.pk, "name": "ci deploys", "role": Role.ADMIN, **fields}
    return client.post(admin_url("accounts_apikey_add"), data, follow=True)


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(tenant_admin, tenant):
    response = _add_key(tenant_admin, tenant, role=Role.MANAGER)

    assert response.status_code == 200
    [message] = [m for m in messages_shown(response) if KEY.search(m)]
    key = KEY.search(message).group()
    [api_key] = ApiKey.objects.filter(tenant=tenant)
    assert (api_key.name, api_key.role) == ("ci deploys", Role.MANAGER)
    assert api_key.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    assert api_key.prefix == key[:12]
    assert key not in [value for value in ApiKey.objects.values_list("name", "prefix", "hashed_key")[0]]
    assert authenticate_api_key(key) == api_key
    assert text(response).count(key) == 1


def test_list_and_change_pages_show_only_the_prefix(tenant_admin, tenant):
    created = create_api_key(tenant=tenant, name="shown")

    listing = tenant_admin.get(admin_url("accounts_apikey_changelist"))
    page = tenant_admin.get(admin_url("accounts_apikey_change", created.api_key.pk))

    for response in (listing, page):
        assert response.status_code == 200
        assert created.api_key.prefix in text(response)
        assert created.key not in text(response)
        assert created.api_key.hashed_key not in text(response)


def test_renaming_a_key_keeps_its_hash_tenant_and_role(tenant_admin, tenant, other_tenant):
    created = create_api_key(tenant=tenant, name="old", role=Role.USER)

    response = tenant_admin.post(
        admin_url("accounts_apikey_change", created.api_key.pk),
        {"name": "new", "tenant": other_tenant.pk, "role": Role.ADMIN},
    )

    assert response.status_code == 302
    api_key = ApiKey.objects.get(pk=created.api_key.pk)
    assert (api_key.name, api_key.tenant_id, api_key.role) == ("new", tenant.pk, Role.USER)
    assert api_key.hashed_key == created.api_key.hashed_key


def test_revoke_action_sets_revoked_at(tenant_admin, tenant):
    revoked, kept = create_api_key(tenant=tenant), create_api_key(tenant=tenant)

    response = tenant_admin.post(
        admin_url("accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [revoked.api_key.pk]},
        follow=True,
    )

    assert "Revoked 1 key(s)." in messages_shown(response)
    assert ApiKey.objects.get(pk=revoked.api_key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=kept.api_key.pk).revoked_at is None
    assert authenticate_api_key(revoked.key) is None
    assert authenticate_api_key(kept.key) is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"role": "owner"}, "role"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"tenant": ""}, "tenant")],
)
def test_bad_api_key_input_is_a_form_error(tenant_admin, tenant, fields, field):
    before = db_state()

    response = _add_key(tenant_admin, tenant, **fields)

    assert response.status_code == 200
    assert field in form_errors(response)
    assert db_state() == before


def test_managers_cannot_add_keys(tenant):
    manager = staff_client(tenant, Role.MANAGER)
    before = db_state()

    response = manager.post(admin_url("accounts_apikey_add"), {"tenant": tenant.pk, "name": "k", "role": "admin"})

    assert response.status_code == 403
    assert db_state() == before


# --- event types -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad Name", "nodot", "a..b", "UPPER.case", ""])
def test_superuser_adding_an_event_type_with_an_invalid_name_gets_a_form_error(superuser, name):
    before = db_state()

    response = superuser.post(admin_url("events_eventtype_add"), {"name": name, "example": "{}"})

    assert response.status_code == 200
    assert "name" in form_errors(response)
    assert db_state() == before


def test_superuser_adding_an_event_type_with_bad_json_gets_a_form_error(superuser):
    before = db_state()

    response = superuser.post(
        admin_url("events_eventtype_add"), {"name": "order.shipped", "example": "{", "schema": ""}
    )

    assert response.status_code == 200
    assert "example" in form_errors(response)
    assert db_state() == before


def test_superuser_adds_an_event_type(superuser):
    response = superuser.post(
        admin_url("events_eventtype_add"),
        {"name": "order.shipped", "description": "An order left.", "example": '{"id": 1}', "schema": ""},
    )

    assert response.status_code == 302
    assert EventType.objects.get(name="order.shipped").example == {"id": 1}


def test_tenant_admin_reads_the_catalog_but_cannot_change_it(tenant_admin):
    before = db_state()

    listing = tenant_admin.get(admin_url("events_eventtype_changelist"))
    page = tenant_admin.get(admin_url("events_eventtype_change", "webhook.test"))
    add = tenant_admin.post(admin_url("events_eventtype_add"), {"name": "order.shipped", "example": "{}"})
    change = tenant_admin.post(
        admin_url("events_eventtype_change", "webhook.test"), {"name": "webhook.test", "archived": "on"}
    )

    assert (listing.status_code, page.status_code) == (200, 200)
    assert "webhook.test" in text(listing)
    assert 'name="_save"' not in text(page)
    assert admin_url("events_eventtype_add") not in text(listing)
    assert (add.status_code, change.status_code) == (403, 403)
    assert db_state() == before


def test_event_types_cannot_be_deleted_even_by_a_superuser(superuser):
    before = db_state()

    response = superuser.post(admin_url("events_eventtype_delete", "webhook.test"), {"post": "yes"})

    assert response.status_code == 403
    assert db_state() == before
