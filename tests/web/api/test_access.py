"""Who may call which route: every route and method against every kind of caller.

Refused calls must leave the database exactly as it was (``db_state``).
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role
from accounts.services import create_api_key, revoke_api_key
from events.models import EventType
from subscriptions.models import AuthType, Endpoint
from tests.factories import URL, MembershipFactory, endpoint_for, failed_delivery, make_user
from tests.support.clients import logged_in
from tests.support.db import db_state
from tests.web.api.support import API, ids, key_client, session_client, superuser_client

pytestmark = pytest.mark.django_db

_WINDOW = {
    "since": (timezone.now() - timedelta(days=1)).isoformat(),
    "until": (timezone.now() + timedelta(days=1)).isoformat(),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {endpoint}, {event}, {delivery}, {api_key}, {event_type} are filled from the Tenancy's rows
    ok: int  # the admin's status
    kind: str  # "list", "create", "object" (tenant-owned) or "catalog" (global event types)
    body: dict | None = None
    list_key: str = ""  # for lists: which row of the tenant it shows

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("get", "/endpoints/", 200, "list", list_key="endpoint"),
    Route("post", "/endpoints/", 201, "create", {"url": URL, "event_types": ["message.received"]}),
    Route("get", "/endpoints/{endpoint}/", 200, "object"),
    Route("patch", "/endpoints/{endpoint}/", 200, "object", {"name": "renamed", "enabled": False}),
    Route("delete", "/endpoints/{endpoint}/", 204, "object"),
    Route("get", "/endpoints/{endpoint}/secret/", 200, "object"),
    Route("post", "/endpoints/{endpoint}/rotate-secret/", 200, "object"),
    Route("get", "/endpoints/{endpoint}/public-key/", 200, "object"),
    Route("post", "/endpoints/{endpoint}/rotate-signing-key/", 200, "object"),
    # Forced: a test event would go to a public address (the test itself: test_enable_endpoint.py).
    Route("post", "/endpoints/{disabled_endpoint}/enable/", 200, "object", {"force": True}),
    Route("post", "/endpoints/{endpoint}/disable/", 200, "object"),
    Route("post", "/endpoints/{endpoint}/test/", 202, "object", {}),
    Route("post", "/endpoints/{endpoint}/replay/", 200, "object", _WINDOW),
    Route("get", "/endpoints/{endpoint}/stats/", 200, "object"),
    Route("get", "/events/", 200, "list", list_key="event"),
    Route("post", "/events/", 202, "create", {"type": "message.received", "data": {"text": "hi"}}),
    Route("post", "/events/batch/", 202, "create", {"events": [{"type": "message.received", "data": {"text": "hi"}}]}),
    Route("get", "/events/{event}/", 200, "object"),
    Route("get", "/deliveries/", 200, "list", list_key="delivery"),
    Route("get", "/deliveries/{delivery}/", 200, "object"),
    Route("post", "/deliveries/{delivery}/resend/", 202, "object"),
    Route("get", "/api-keys/", 200, "list", list_key="api_key"),
    Route("post", "/api-keys/", 201, "create", {"name": "deploy bot"}),
    Route("get", "/api-keys/{api_key}/", 200, "object"),
    Route("post", "/api-keys/{api_key}/revoke/", 200, "object"),
    Route("get", "/event-types/", 200, "catalog"),
    Route("get", "/event-types/{event_type}/", 200, "catalog"),
]
EVENT_TYPE_CREATE = Route(
    "post", "/event-types/", 201, "staff", {"name": "invoice.paid", "description": "An invoice was paid."}
)
ALL_ROUTES = [*ROUTES, EVENT_TYPE_CREATE]


def _params(routes):
    return [pytest.param(route, id=route.id) for route in routes]


@dataclass(frozen=True)
class Tenancy:
    """One tenant's rows: an endpoint (with auth), an event with a failed delivery to it, an API key, and a
    disabled endpoint."""

    tenant: object
    endpoint: Endpoint
    event: object
    delivery: object
    api_key: ApiKey
    disabled_endpoint: Endpoint

    def values(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint.pk,
            "disabled_endpoint": self.disabled_endpoint.pk,
            "event": self.event.pk,
            "delivery": self.delivery.pk,
            "api_key": self.api_key.pk,
            "event_type": "message.received",
        }

    def path(self, route: Route) -> str:
        return API + route.path.format(**self.values())


def _tenancy(tenant) -> Tenancy:
    endpoint = endpoint_for(tenant, auth_type=AuthType.BEARER, auth={"token": "tok-0123456789-abcdef"})
    delivery = failed_delivery(tenant, endpoint)
    api_key = create_api_key(tenant=tenant, name="existing").api_key
    return Tenancy(tenant, endpoint, delivery.event, delivery, api_key, endpoint_for(tenant, enabled=False))


@pytest.fixture
def ours(tenant) -> Tenancy:
    return _tenancy(tenant)


@pytest.fixture
def theirs(other_tenant) -> Tenancy:
    return _tenancy(other_tenant)


def _call(client: APIClient, route: Route, path: str):
    if route.body is None:
        return getattr(client, route.method)(path)
    return getattr(client, route.method)(path, route.body, format="json")


def _revoked_key_client(tenant) -> APIClient:
    created = create_api_key(tenant=tenant)
    revoke_api_key(api_key=created.api_key)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {created.key}")


UNAUTHENTICATED = {
    "anonymous": lambda tenant: APIClient(),
    "unknown key": lambda tenant: APIClient(HTTP_AUTHORIZATION="Bearer whk_" + "x" * 43),
    "malformed key": lambda tenant: APIClient(HTTP_AUTHORIZATION="Bearer not-a-webhookhub-key"),
    "revoked key": _revoked_key_client,
}
NOT_ADMIN = {
    "session manager": lambda tenant: session_client(tenant, Role.MANAGER),
    "session user": lambda tenant: session_client(tenant, Role.USER),
    "session without membership": lambda tenant: session_client(None),
    "manager key": lambda tenant: key_client(tenant, Role.MANAGER),
    "user key": lambda tenant: key_client(tenant, Role.USER),
}
ADMINS = {
    "session admin": lambda tenant: session_client(tenant, Role.ADMIN),
    "admin key": lambda tenant: key_client(tenant, Role.ADMIN),
}


@pytest.mark.parametrize("caller", list(UNAUTHENTICATED))
@pytest.mark.parametrize("route", _params(ALL_ROUTES))
def test_calls_without_valid_credentials_get_401_and_change_nothing(route, caller, ours, theirs):
    client = UNAUTHENTICATED[caller](ours.tenant)
    before = db_state()

    response = _call(client, route, ours.path(route))

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["errors"] == {}
    assert db_state() == before


@pytest.mark.parametrize("caller", list(NOT_ADMIN))
@pytest.mark.parametrize("route", _params(ALL_ROUTES))
def test_callers_who_are_not_tenant_admins_get_403_and_change_nothing(route, caller, ours, theirs):
    client = NOT_ADMIN[caller](ours.tenant)
    before = db_state()

    response = _call(client, route, ours.path(route))

    assert response.status_code == 403, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert db_state() == before


@pytest.mark.parametrize("caller", list(ADMINS))
@pytest.mark.parametrize("route", _params([r for r in ROUTES if r.kind == "object"]))
def test_admin_of_another_tenant_gets_404_on_our_objects_and_changes_nothing(route, caller, ours, theirs):
    client = ADMINS[caller](theirs.tenant)
    before = db_state()

    response = _call(client, route, ours.path(route))

    assert response.status_code == 404, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert db_state() == before


@pytest.mark.parametrize("caller", list(ADMINS))
@pytest.mark.parametrize("route", _params([r for r in ROUTES if r.kind == "list"]))
def test_admin_of_another_tenant_lists_only_their_own_rows(route, caller, ours, theirs):
    client = ADMINS[caller](theirs.tenant)

    response = _call(client, route, ours.path(route))

    assert response.status_code == 200
    listed = ids(response)
    assert theirs.values()[route.list_key] in listed
    assert ours.values()[route.list_key] not in listed


@pytest.mark.parametrize("caller", list(ADMINS))
@pytest.mark.parametrize("route", _params([r for r in ROUTES if r.kind == "create"]))
def test_creating_as_admin_of_another_tenant_writes_only_to_their_tenant(route, caller, ours, theirs):
    client = ADMINS[caller](theirs.tenant)
    before = db_state()

    response = _call(client, route, ours.path(route))

    assert response.status_code == route.ok, response.content
    after = db_state()
    for table in ("endpoints", "events", "api_keys"):
        new = {pk: row for pk, row in after[table].items() if pk not in before[table]}
        assert all(row[0] == theirs.tenant.pk for row in new.values()), table
        old = {pk: row for pk, row in after[table].items() if pk in before[table]}
        assert old == before[table], table


@pytest.mark.parametrize("caller", list(ADMINS))
@pytest.mark.parametrize("route", _params([r for r in ROUTES if r.kind == "catalog"]))
def test_event_type_catalog_is_readable_by_every_tenant_admin(route, caller, ours, theirs):
    client = ADMINS[caller](theirs.tenant)

    response = _call(client, route, ours.path(route))

    assert response.status_code == 200


@pytest.mark.parametrize("caller", list(ADMINS))
@pytest.mark.parametrize("route", _params(ROUTES))
def test_tenant_admin_may_call_every_route(route, caller, ours, theirs):
    client = ADMINS[caller](ours.tenant)
    before = db_state()

    response = _call(client, route, ours.path(route))

    assert response.status_code == route.ok, response.content
    if route.kind == "list":
        listed = ids(response)
        assert ours.values()[route.list_key] in listed
        assert theirs.values()[route.list_key] not in listed
    # Every write shows up in db_state, so "db_state() == before" above really means nothing changed.
    assert (db_state() != before) == (route.method != "get")


@pytest.mark.parametrize("caller", list(ADMINS))
def test_tenant_admin_cannot_add_event_types(caller, ours):
    client = ADMINS[caller](ours.tenant)
    before = db_state()

    response = _call(client, EVENT_TYPE_CREATE, ours.path(EVENT_TYPE_CREATE))

    assert response.status_code == 403
    assert not EventType.objects.filter(name="invoice.paid").exists()
    assert db_state() == before


def test_superuser_adds_an_event_type(db):
    response = superuser_client().post(API + "/event-types/", EVENT_TYPE_CREATE.body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "invoice.paid"
    created = EventType.objects.get(name="invoice.paid")
    assert (created.description, created.archived) == ("An invoice was paid.", False)


def test_superuser_cannot_add_an_existing_event_type(db):
    before = db_state()

    response = superuser_client().post(API + "/event-types/", {"name": "message.received"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert db_state() == before


# --- which tenant a request acts for ------------------------------------------------------------


def test_superuser_without_x_tenant_lists_every_tenants_rows(ours, theirs):
    response = superuser_client().get(API + "/endpoints/")

    assert response.status_code == 200
    assert {ours.endpoint.pk, theirs.endpoint.pk} <= set(ids(response))


def test_superuser_with_x_tenant_lists_that_tenants_rows_only(ours, theirs):
    response = superuser_client().get(API + "/endpoints/", HTTP_X_TENANT=theirs.tenant.slug)

    assert response.status_code == 200
    assert set(ids(response)) == {theirs.endpoint.pk, theirs.disabled_endpoint.pk}


def test_superuser_must_name_a_tenant_to_create(ours, theirs):
    client = superuser_client()
    before = db_state()

    refused = client.post(API + "/endpoints/", {"url": URL}, format="json")

    assert refused.status_code == 400
    assert "tenant" in refused.json()["errors"]
    assert db_state() == before

    created = client.post(API + "/endpoints/", {"url": URL}, format="json", HTTP_X_TENANT=theirs.tenant.slug)

    assert created.status_code == 201
    assert Endpoint.objects.get(pk=created.json()["id"]).tenant == theirs.tenant


def test_superuser_naming_an_unknown_tenant_gets_400(ours):
    response = superuser_client().get(API + "/endpoints/", HTTP_X_TENANT="no-such-tenant")

    assert response.status_code == 400
    assert "tenant" in response.json()["errors"]


def test_admin_of_several_tenants_must_name_one(ours, theirs):
    user = make_user()
    MembershipFactory(user=user, tenant=ours.tenant, role=Role.ADMIN)
    MembershipFactory(user=user, tenant=theirs.tenant, role=Role.ADMIN)
    client = logged_in(user, APIClient)
    before = db_state()

    unnamed = client.post(API + "/endpoints/", {"url": URL}, format="json")

    assert unnamed.status_code == 400
    assert "tenant" in unnamed.json()["errors"]
    assert db_state() == before

    named = client.get(API + "/endpoints/", HTTP_X_TENANT=theirs.tenant.slug)

    assert named.status_code == 200
    assert set(ids(named)) == {theirs.endpoint.pk, theirs.disabled_endpoint.pk}

    by_query = client.get(API + f"/endpoints/?tenant={ours.tenant.slug}")

    assert by_query.status_code == 200
    assert set(ids(by_query)) == {ours.endpoint.pk, ours.disabled_endpoint.pk}


def test_session_admin_naming_a_tenant_where_they_are_only_a_manager_gets_403(ours, theirs):
    user = make_user()
    MembershipFactory(user=user, tenant=theirs.tenant, role=Role.ADMIN)
    MembershipFactory(user=user, tenant=ours.tenant, role=Role.MANAGER)
    client = logged_in(user, APIClient)
    before = db_state()

    response = client.post(
        API + f"/endpoints/{ours.endpoint.pk}/disable/", HTTP_X_TENANT=ours.tenant.slug, format="json"
    )

    assert response.status_code == 403
    assert db_state() == before


def test_api_key_naming_another_tenant_gets_403(ours, theirs):
    client = key_client(theirs.tenant)
    before = db_state()

    response = client.post(API + "/endpoints/", {"url": URL}, format="json", HTTP_X_TENANT=ours.tenant.slug)

    assert response.status_code == 403
    assert db_state() == before


def test_api_key_naming_its_own_tenant_by_slug_or_id_is_allowed(ours):
    client = key_client(ours.tenant)

    assert client.get(API + "/endpoints/", HTTP_X_TENANT=ours.tenant.slug).status_code == 200
    assert client.get(API + "/endpoints/", HTTP_X_TENANT=ours.tenant.pk).status_code == 200


def test_session_writes_need_the_csrf_token_and_api_keys_do_not(ours):
    user = make_user()
    MembershipFactory(user=user, tenant=ours.tenant, role=Role.ADMIN)
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    before = db_state()

    refused = browser.post(API + f"/endpoints/{ours.endpoint.pk}/disable/")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert db_state() == before
    assert browser.get(API + "/endpoints/").status_code == 200  # reads need no token

    keyed = key_client(ours.tenant)
    keyed.handler.enforce_csrf_checks = True
    assert keyed.post(API + f"/endpoints/{ours.endpoint.pk}/disable/").status_code == 200
