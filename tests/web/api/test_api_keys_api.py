"""/api/v1/api-keys/: the key is shown once at creation, only its hash is stored, revoked keys stop working."""

import hashlib

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role
from accounts.services import create_api_key
from tests.support.db import db_state
from tests.web.api.support import API, key_client, session_client

pytestmark = pytest.mark.django_db

KEYS = API + "/api-keys/"


def _bearer(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {key}")


def test_create_returns_the_key_once_and_stores_only_its_hash(admin, tenant):
    response = admin.post(KEYS, {"name": "deploy bot", "role": "manager"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    key = body["key"]
    assert key.startswith("whk_") and len(key) > 40
    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    assert (stored.tenant, stored.name, stored.role, stored.prefix) == (tenant, "deploy bot", Role.MANAGER, key[:12])
    assert body["prefix"] == key[:12] and body["revoked_at"] is None
    stored_columns = [str(v) for v in ApiKey.objects.filter(pk=stored.pk).values().get().values()]
    assert key not in stored_columns


def test_create_defaults_to_the_admin_role(admin):
    response = admin.post(KEYS, {"name": "ops"}, format="json")

    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).role == Role.ADMIN


def test_a_created_key_works(admin, tenant):
    key = admin.post(KEYS, {"name": "ci"}, format="json").json()["key"]

    assert _bearer(key).get(API + "/endpoints/").status_code == 200
    assert ApiKey.objects.get(prefix=key[:12]).last_used_at is not None


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "n" * 201}, {"name": "x", "role": "owner"}],
    ids=["no name", "blank", "long", "role"],
)
def test_create_with_bad_input_is_400_and_writes_nothing(admin, body):
    before = db_state()

    response = admin.post(KEYS, body, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) <= {"name", "role"} and response.json()["errors"]
    assert db_state() == before


def test_list_shows_prefix_and_name_but_never_the_key(tenant, other_tenant):
    created = create_api_key(tenant=tenant, name="billing sync")
    theirs = create_api_key(tenant=other_tenant, name="their key")
    client = session_client(tenant, Role.ADMIN)

    response = client.get(KEYS)

    assert response.status_code == 200
    assert created.key.encode() not in response.content
    assert created.api_key.hashed_key.encode() not in response.content
    assert b'"key"' not in response.content and b"hashed" not in response.content
    (row,) = response.json()["results"]
    assert (row["id"], row["name"], row["prefix"], row["role"]) == (
        created.api_key.pk,
        "billing sync",
        created.key[:12],
        "admin",
    )
    assert theirs.key[:12].encode() not in response.content

    read = client.get(f"{KEYS}{created.api_key.pk}/")

    assert read.status_code == 200 and created.key.encode() not in read.content
    assert read.json()["prefix"] == created.key[:12]


def test_revoke_sets_revoked_at_and_the_key_then_gets_401(tenant):
    created = create_api_key(tenant=tenant, name="old")
    revoked_client = _bearer(created.key)
    assert revoked_client.get(API + "/endpoints/").status_code == 200

    response = key_client(tenant).post(f"{KEYS}{created.api_key.pk}/revoke/")

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None
    refused = revoked_client.get(API + "/endpoints/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Unknown or revoked API key.", "errors": {}}


def test_revoking_twice_keeps_the_first_time(admin, tenant):
    created = create_api_key(tenant=tenant)
    admin.post(f"{KEYS}{created.api_key.pk}/revoke/")
    created.api_key.refresh_from_db()
    first = created.api_key.revoked_at

    response = admin.post(f"{KEYS}{created.api_key.pk}/revoke/")

    assert response.status_code == 200
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at == first


def test_a_key_may_revoke_itself(tenant):
    created = create_api_key(tenant=tenant)
    client = _bearer(created.key)

    assert client.post(f"{KEYS}{created.api_key.pk}/revoke/").status_code == 200
    assert client.get(KEYS).status_code == 401


def test_revoking_another_tenants_key_is_404_and_it_keeps_working(admin, other_tenant):
    theirs = create_api_key(tenant=other_tenant)
    before = db_state()

    response = admin.post(f"{KEYS}{theirs.api_key.pk}/revoke/")

    assert response.status_code == 404
    assert db_state() == before
    theirs.api_key.refresh_from_db()
    assert theirs.api_key.revoked_at is None
    assert _bearer(theirs.key).get(API + "/endpoints/").status_code == 200
