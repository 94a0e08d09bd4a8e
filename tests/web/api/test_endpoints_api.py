"""/api/v1/endpoints/: create, read (secrets masked), update, secrets and rotation, enable/disable, delete, pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.signing import sign, signature_header
from subscriptions.models import AuthType, Endpoint, EndpointSecret
from subscriptions.selectors import signing_secrets
from tests.factories import URL, endpoint_for, failing_for
from tests.support.db import db_state
from tests.support.write_only import HEADER_VALUE, KEY_VALUE, PASSWORD, TOKEN, assert_none_shown
from tests.web.api.support import API, ids, results

pytestmark = pytest.mark.django_db


AUTHS = {
    "bearer": ({"type": "bearer", "token": TOKEN}, {"type": "bearer", "token": "****0001"}),
    "api_key": (
        {"type": "api_key", "header": "X-Api-Key", "value": KEY_VALUE},
        {"type": "api_key", "header": "X-Api-Key", "value": "****0002"},
    ),
    "basic": (
        {"type": "basic", "username": "hook-user", "password": PASSWORD},
        {"type": "basic", "username": "hook-user", "password": "****0003"},
    ),
    "none": ({"type": "none"}, {"type": "none"}),
}


def _create(client, **fields):
    return client.post(API + "/endpoints/", {"url": URL, **fields}, format="json")


def _detail(endpoint_id: str) -> str:
    return f"{API}/endpoints/{endpoint_id}/"


# --- create and read --------------------------------------------------------------------------------


def test_create_returns_201_with_the_signing_secret_once(admin, tenant):
    response = _create(
        admin,
        name="orders",
        event_types=["message.received", "chat.opened"],
        auth=AUTHS["bearer"][0],
        custom_headers={"X-Env": HEADER_VALUE},
        timeout_s=7.5,
        rate_limit_per_s=20,
        filter={"direction": "inbound"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = Endpoint.objects.get(pk=body["id"])
    secret = EndpointSecret.objects.get(endpoint=endpoint, scheme="v1")  # beside it, the v1a key
    assert body["secret"] == secret.secret and body["secret"].startswith("whsec_")
    assert response.content.count(b"whsec_") == 1  # only in the secret field
    assert_none_shown(response.content)
    assert body["auth"] == AUTHS["bearer"][1]
    assert body["custom_headers"] == {"X-Env": "****0004"}
    assert (endpoint.tenant, endpoint.name, endpoint.url, endpoint.event_types) == (
        tenant,
        "orders",
        URL,
        ["message.received", "chat.opened"],
    )
    assert (endpoint.auth_type, endpoint.auth, endpoint.custom_headers) == (
        AuthType.BEARER,
        {"token": TOKEN},
        {"X-Env": HEADER_VALUE},
    )
    assert (endpoint.timeout_s, endpoint.rate_limit_per_s, endpoint.filter) == (7.5, 20, {"direction": "inbound"})
    assert endpoint.enabled is True and endpoint.created_by is None  # a key, not a user, created it


def test_create_defaults_to_every_event_type_and_no_auth(admin):
    response = _create(admin)

    assert response.status_code == 201
    assert response.json()["event_types"] == ["*"]
    assert response.json()["auth"] == {"type": "none"}
    assert response.json()["custom_headers"] == {}


def test_the_secret_is_never_in_later_reads(admin):
    created = _create(admin, auth=AUTHS["bearer"][0], custom_headers={"X-Env": HEADER_VALUE}).json()
    secret = created["secret"].encode()

    for response in (admin.get(API + "/endpoints/"), admin.get(_detail(created["id"]))):
        assert response.status_code == 200
        assert b"whsec_" not in response.content and secret not in response.content
        assert b'"secret"' not in response.content
        assert_none_shown(response.content)


@pytest.mark.parametrize("auth_type", list(AUTHS))
def test_reads_show_auth_masked(admin, auth_type):
    written, shown = AUTHS[auth_type]
    created = _create(admin, auth=written, custom_headers={"X-Env": HEADER_VALUE})
    assert created.status_code == 201, created.content
    assert_none_shown(created.content)
    endpoint_id = created.json()["id"]

    listed = admin.get(API + "/endpoints/")
    read = admin.get(_detail(endpoint_id))
    patched = admin.patch(_detail(endpoint_id), {"description": "still masked"}, format="json")

    for response in (listed, read, patched):
        assert response.status_code == 200
        assert_none_shown(response.content)
        assert b"whsec_" not in response.content
    assert created.json()["auth"] == read.json()["auth"] == patched.json()["auth"] == shown
    assert results(listed)[0]["auth"] == shown
    assert read.json()["custom_headers"] == {"X-Env": "****0004"}


def test_short_write_only_values_are_masked_completely(admin):
    created = _create(admin, auth={"type": "bearer", "token": "short"}, custom_headers={"X-A": "tiny"})

    read = admin.get(_detail(created.json()["id"])).json()

    assert read["auth"] == {"type": "bearer", "token": "****"}
    assert read["custom_headers"] == {"X-A": "****"}


def test_get_secret_returns_the_current_secret(admin):
    created = _create(admin).json()

    response = admin.get(_detail(created["id"]) + "secret/")

    assert response.status_code == 200
    assert response.json() == {"secret": created["secret"]}


def test_rotate_secret_returns_a_new_secret_and_the_old_one_still_signs(admin):
    created = _create(admin).json()
    old = created["secret"]

    response = admin.post(_detail(created["id"]) + "rotate-secret/")

    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert admin.get(_detail(created["id"]) + "secret/").json() == {"secret": new}
    endpoint = Endpoint.objects.get(pk=created["id"])
    now = timezone.now()
    rows = {row.secret: row.expires_at for row in EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1")}
    assert set(rows) == {old, new}
    assert rows[new] is None and rows[old] > now  # two live secrets: the old one for the grace period
    live = signing_secrets([endpoint], now=now)[endpoint.pk]
    assert live == [new, old]
    header = signature_header(secrets=live, msg_id="evt_1", timestamp=1_700_000_000, body=b"{}")
    assert sign(secret=old, msg_id="evt_1", timestamp=1_700_000_000, body=b"{}") in header.split(" ")


# --- update --------------------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_keeps_auth(admin):
    created = _create(
        admin,
        name="before",
        description="kept",
        event_types=["message.received"],
        auth=AUTHS["api_key"][0],
        custom_headers={"X-Env": HEADER_VALUE},
        timeout_s=5,
    ).json()
    before = Endpoint.objects.get(pk=created["id"])

    response = admin.patch(
        _detail(created["id"]), {"name": "after", "rate_limit_per_s": 3, "max_in_flight": 2}, format="json"
    )

    assert response.status_code == 200, response.content
    assert_none_shown(response.content)
    after = Endpoint.objects.get(pk=created["id"])
    assert (after.name, after.rate_limit_per_s, after.max_in_flight) == ("after", 3, 2)
    assert (response.json()["rate_limit_per_s"], response.json()["max_in_flight"]) == (3, 2)
    unchanged = ("url", "description", "event_types", "enabled", "auth_type", "auth", "custom_headers", "timeout_s")
    assert [getattr(after, f) for f in unchanged] == [getattr(before, f) for f in unchanged]
    assert after.auth == {"header": "X-Api-Key", "value": KEY_VALUE}
    assert response.json()["auth"] == AUTHS["api_key"][1]
    assert EndpointSecret.objects.filter(endpoint=after).count() == 2  # the v1 secret and the v1a key


def test_patch_replaces_auth_when_given(admin):
    created = _create(admin, auth=AUTHS["bearer"][0]).json()

    response = admin.patch(_detail(created["id"]), {"auth": AUTHS["basic"][0]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["auth"] == AUTHS["basic"][1]
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.BASIC, {"username": "hook-user", "password": PASSWORD})


def test_patch_to_no_auth_clears_the_values(admin):
    created = _create(admin, auth=AUTHS["bearer"][0]).json()

    response = admin.patch(_detail(created["id"]), {"auth": {"type": "none"}}, format="json")

    assert response.status_code == 200
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.NONE, None)


def test_patch_auth_without_type_is_a_400_naming_auth(admin):
    created = _create(admin, auth=AUTHS["bearer"][0]).json()
    before = db_state()

    response = admin.patch(_detail(created["id"]), {"auth": {"token": "new-token-0123456789"}}, format="json")

    assert response.status_code == 400
    assert "auth" in response.json()["errors"]
    assert db_state() == before


# --- bad input: 400, the field named, nothing written --------------------------------------------------

BAD_INPUT = [
    ("url", "not a url"),
    ("url", "ftp://93.184.216.34/hook"),
    ("url", "http://10.0.0.1/"),
    ("url", "http://127.0.0.1/"),
    ("url", "https://user:pass@93.184.216.34/hook"),
    ("url", ""),
    ("event_types", ["no.such_type"]),
    ("event_types", []),
    ("event_types", "message.received"),
    ("event_types", ["*", "message.received"]),
    ("auth", {"type": "carrier_pigeon"}),
    ("auth", {"type": "bearer"}),
    ("auth", {"type": "bearer", "token": ""}),
    ("auth", {"type": "api_key", "header": "X-Key\r\nX-Evil: 1", "value": "v"}),
    ("auth", {"type": "api_key", "header": "X-Key", "value": "line1\nline2"}),
    ("auth", {"type": "api_key", "header": "webhook-signature", "value": "v"}),
    ("auth", {"type": "api_key", "value": "v"}),
    ("auth", {"type": "basic", "username": "a:b", "password": "p"}),
    ("auth", {"type": "basic", "username": "u"}),
    ("auth", "bearer"),
    ("custom_headers", {"webhook-signature": "v1,forged"}),
    ("custom_headers", {"Content-Type": "text/plain"}),
    ("custom_headers", {"X-Env": "a\r\nX-Evil: 1"}),
    ("custom_headers", {"X-Env": "a\nb"}),
    ("custom_headers", {"Bad Header": "x"}),
    ("custom_headers", {"X-Env:": "x"}),
    ("custom_headers", ["X-Env"]),
    ("timeout_s", 0),
    ("timeout_s", 100),
    ("timeout_s", -1),
    ("timeout_s", "soon"),
    ("rate_limit_per_s", 0),
    ("rate_limit_per_s", -5),
    ("rate_limit_per_s", "fast"),
    ("max_in_flight", 0),
    ("max_in_flight", 65),
    ("max_in_flight", None),
    ("max_in_flight", "many"),
    ("filter", ["direction"]),
    ("filter", "direction=inbound"),
    ("filter", 5),
    ("name", "n" * 201),
    ("enabled", "maybe"),
]


@pytest.fixture
def no_private_networks(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}


@pytest.mark.usefixtures("no_private_networks")
@pytest.mark.parametrize(("field", "value"), BAD_INPUT, ids=[f"{f}={v!r}" for f, v in BAD_INPUT])
def test_create_with_bad_input_is_400_naming_the_field_and_writes_nothing(admin, field, value):
    before = db_state()

    response = _create(admin, **{field: value})

    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str) and body["detail"]
    assert _names(field, body["errors"]), body
    assert db_state() == before


def _names(field: str, errors: dict) -> bool:
    """The error body names the field, or a part of it ("auth.token")."""
    return any(key == field or key.startswith(f"{field}.") for key in errors)


@pytest.mark.usefixtures("no_private_networks")
@pytest.mark.parametrize(("field", "value"), BAD_INPUT, ids=[f"{f}={v!r}" for f, v in BAD_INPUT])
def test_patch_with_bad_input_is_400_naming_the_field_and_changes_nothing(admin, tenant, field, value):
    endpoint = endpoint_for(tenant, auth_type=AuthType.BEARER, auth={"token": TOKEN})
    before = db_state()

    response = admin.patch(_detail(endpoint.pk), {"name": "would change", field: value}, format="json")

    assert response.status_code == 400, response.content
    assert _names(field, response.json()["errors"]), response.json()
    assert db_state() == before


def test_create_without_url_is_400(admin):
    before = db_state()

    response = admin.post(API + "/endpoints/", {"event_types": ["*"]}, format="json")

    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    assert db_state() == before


def test_private_addresses_are_accepted_when_allowed(admin, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"]}

    response = _create(admin, url="http://10.0.0.1/")

    assert response.status_code == 201
    assert Endpoint.objects.get(pk=response.json()["id"]).url == "http://10.0.0.1/"


def test_patch_changing_auth_type_without_values_is_400(admin):
    created = _create(admin, auth=AUTHS["bearer"][0]).json()
    before = db_state()

    response = admin.patch(_detail(created["id"]), {"auth": {"type": "basic"}}, format="json")

    assert response.status_code == 400
    assert "auth" in response.json()["errors"]
    assert db_state() == before


def test_error_detail_for_a_nested_field_is_a_readable_message(admin):
    response = _create(admin, auth="bearer")

    assert response.status_code == 400
    assert "ErrorDetail" not in response.json()["detail"]
    assert response.json()["detail"] == "Invalid data. Expected a dictionary, but got str."


@pytest.mark.parametrize("method", ["post", "patch"])
def test_rate_limit_beyond_the_column_range_is_400(admin, tenant, method):
    endpoint = endpoint_for(tenant)
    before = db_state()

    if method == "post":
        response = _create(admin, rate_limit_per_s=10**10)
    else:
        response = admin.patch(_detail(endpoint.pk), {"rate_limit_per_s": 10**10}, format="json")

    assert response.status_code == 400
    assert "rate_limit_per_s" in response.json()["errors"]
    assert db_state() == before


@pytest.mark.parametrize(
    "raw_filter", [b'{"direction\\u0000": "in"}', b'{"direction": "\\ud800"}'], ids=["NUL", "lone surrogate"]
)
def test_filter_that_cannot_be_stored_is_400(admin, raw_filter):
    before = db_state()

    response = admin.post(
        API + "/endpoints/",
        data=b'{"url": "%s", "filter": %s}' % (URL.encode(), raw_filter),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "filter" in response.json()["errors"]
    assert db_state() == before


# --- enable, disable, delete ---------------------------------------------------------------------------


def test_disable_then_enable(admin, tenant):
    endpoint = endpoint_for(tenant)

    disabled = admin.post(_detail(endpoint.pk) + "disable/")

    assert disabled.status_code == 200
    assert (disabled.json()["enabled"], disabled.json()["disabled_reason"]) == (False, "Disabled by an admin.")
    assert disabled.json()["disabled_at"] is not None
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Disabled by an admin.")
    assert endpoint.disabled_at is not None

    failing_for(endpoint, timedelta(days=1))
    enabled = admin.post(_detail(endpoint.pk) + "enable/", {"force": True}, format="json")  # no test: nothing listens

    assert enabled.status_code == 200
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"], enabled.json()["disabled_at"]) == (
        True,
        "",
        None,
    )
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at, endpoint.health.failing_since) == (
        True,
        "",
        None,
        None,
    )


def test_patch_enabled_false_records_the_reason(admin, tenant):
    endpoint = endpoint_for(tenant)

    response = admin.patch(_detail(endpoint.pk), {"enabled": False}, format="json")

    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Disabled by an admin.")


def test_delete_removes_the_endpoint_and_its_secrets(admin, tenant):
    endpoint = endpoint_for(tenant)
    kept = endpoint_for(tenant)

    response = admin.delete(_detail(endpoint.pk))

    assert response.status_code == 204
    assert response.content == b""
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert not EndpointSecret.objects.filter(endpoint_id=endpoint.pk).exists()
    assert list(Endpoint.objects.values_list("pk", flat=True)) == [kept.pk]
    assert admin.get(_detail(endpoint.pk)).status_code == 404


def test_put_is_not_allowed(admin, tenant):
    endpoint = endpoint_for(tenant)
    before = db_state()

    response = admin.put(_detail(endpoint.pk), {"url": URL}, format="json")

    assert response.status_code == 405
    assert db_state() == before


# --- list ------------------------------------------------------------------------------------------------


def test_list_is_paginated_newest_first(admin, tenant):
    endpoints = [endpoint_for(tenant, name=f"ep{i}") for i in range(3)]
    base = timezone.now() - timedelta(hours=1)
    for minutes, endpoint in enumerate(endpoints):  # distinct, known creation times: ep0 oldest
        Endpoint.objects.filter(pk=endpoint.pk).update(created_at=base + timedelta(minutes=minutes))

    first = admin.get(API + "/endpoints/?page_size=2")

    assert first.status_code == 200
    assert set(first.json()) == {"next", "previous", "results"}
    assert [row["name"] for row in results(first)] == ["ep2", "ep1"]
    assert first.json()["previous"] is None and first.json()["next"]

    second = admin.get(first.json()["next"])

    assert [row["name"] for row in results(second)] == ["ep0"]
    assert second.json()["next"] is None and second.json()["previous"]


def test_list_filters_by_enabled(admin, tenant):
    on = endpoint_for(tenant)
    off = endpoint_for(tenant, enabled=False)

    assert ids(admin.get(API + "/endpoints/?enabled=true")) == [on.pk]
    assert ids(admin.get(API + "/endpoints/?enabled=false")) == [off.pk]
