"""The endpoint admin for receivers behind gateways: OAuth2 client credentials (the client secret write-only), the
signature scheme with its public keys and their rotation, and mutual TLS (the key write-only, the certificate's
expiry shown and warned about)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from subscriptions.keys import public_key
from subscriptions.models import AuthType, Endpoint, EndpointSecret, SignatureScheme
from subscriptions.selectors import public_keys
from tests.factories import endpoint_for
from tests.support.db import db_state
from tests.support.tls import CertificateAuthority
from tests.web.admin.support import admin_url, endpoint_form, form_errors, messages_shown, staff_client, text
from tests.web.dashboard.support import url as dashboard_url

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "oauth2-client-SECRET-0005"
TOKEN_URL = "https://93.184.216.34/oauth/token"
OAUTH2_FORM = {
    "auth_type": "oauth2",
    "auth_token_url": TOKEN_URL,
    "auth_client_id": "hub-client",
    "auth_client_secret": CLIENT_SECRET,
    "auth_scope": "webhooks:write",
    "auth_audience": "https://api.example.com",
    "auth_client_auth": "post",
}
OAUTH2_STORED = {
    "token_url": TOKEN_URL,
    "client_id": "hub-client",
    "client_secret": CLIENT_SECRET,
    "scope": "webhooks:write",
    "audience": "https://api.example.com",
    "client_auth": "post",
}


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority()


@pytest.fixture(scope="module")
def pair(ca):
    return ca.issue("hub client")


def _add(client, tenant, /, **fields):
    return client.post(admin_url("subscriptions_endpoint_add"), endpoint_form(tenant, **fields), follow=True)


def _change(client, endpoint, /, **fields):
    return client.post(
        admin_url("subscriptions_endpoint_change", endpoint.pk), endpoint_form(endpoint.tenant, **fields), follow=True
    )


def _change_page(client, endpoint) -> str:
    response = client.get(admin_url("subscriptions_endpoint_change", endpoint.pk))
    assert response.status_code == 200
    return text(response)


def _tls_columns(endpoint) -> tuple:
    return tuple(
        Endpoint.objects.filter(pk=endpoint.pk).values_list(
            "tls_client_certificate", "tls_client_key", "tls_ca_certificate", "tls_client_certificate_expires_at"
        )[0]
    )


def _signing_key(endpoint) -> str:
    return EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1a").latest("created_at").secret


def _assert_nothing_private_on(page: str, *private: str) -> None:
    """None of ``private`` (nor any line inside a PEM one) and no whsk_ key is on the page."""
    for value in private:
        for piece in [value, *value.strip().splitlines()[1:-1]]:
            assert piece not in page, piece[:12]
    assert "whsk_" not in page


# --- OAuth2 client credentials -------------------------------------------------------------------------


def test_an_oauth2_endpoint_is_saved_through_the_admin_form(tenant_admin, tenant):
    response = _add(tenant_admin, tenant, **OAUTH2_FORM)

    assert response.status_code == 200
    [endpoint] = Endpoint.objects.filter(tenant=tenant)
    assert (endpoint.auth_type, endpoint.auth) == (AuthType.OAUTH2, OAUTH2_STORED)
    assert CLIENT_SECRET not in text(response)


def test_the_change_page_shows_the_token_url_and_client_id_and_only_a_mask_of_the_secret(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, auth_type="oauth2", auth=OAUTH2_STORED)

    page = _change_page(tenant_admin, endpoint)

    assert TOKEN_URL in page and 'value="hub-client"' in page
    assert "Stored: ****0005. Leave blank to keep it." in page
    assert CLIENT_SECRET not in page


def test_a_blank_client_secret_keeps_the_stored_one_and_a_blank_scope_removes_the_scope(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, auth_type="oauth2", auth=OAUTH2_STORED)

    _change(tenant_admin, endpoint, **{**OAUTH2_FORM, "auth_client_secret": "", "auth_scope": ""})

    endpoint.refresh_from_db()
    assert endpoint.auth == {key: value for key, value in OAUTH2_STORED.items() if key != "scope"}


def test_a_token_url_the_address_policy_refuses_is_an_auth_error_and_nothing_is_saved(
    tenant_admin, tenant, no_private_networks
):
    before = db_state()

    response = _add(tenant_admin, tenant, **{**OAUTH2_FORM, "auth_token_url": "http://10.0.0.1/token"})

    assert response.status_code == 200
    [message] = form_errors(response)["auth_type"]
    assert message.startswith("The token_url is refused:") and "10.0.0.1" in message
    assert db_state() == before
    assert CLIENT_SECRET not in text(response)


def test_oauth2_without_a_client_secret_is_refused_on_the_auth_field(tenant_admin, tenant):
    before = db_state()

    response = _add(tenant_admin, tenant, **{**OAUTH2_FORM, "auth_client_secret": ""})

    assert form_errors(response)["auth_type"] == ["oauth2 auth needs a non-empty 'client_secret'."]
    assert db_state() == before


# --- the signature scheme and public keys ------------------------------------------------------------------


def test_the_signature_scheme_is_saved_and_the_public_key_shown(tenant_admin, tenant):
    _add(tenant_admin, tenant, signature_scheme="v1a")

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert endpoint.signature_scheme == SignatureScheme.V1A
    page = _change_page(tenant_admin, endpoint)
    assert public_key(_signing_key(endpoint)) in page
    assert "primary: signs now" in page


def test_an_unknown_signature_scheme_is_a_form_error(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = _change(tenant_admin, endpoint, signature_scheme="v2")

    assert "signature_scheme" in form_errors(response)
    assert Endpoint.objects.get(pk=endpoint.pk).signature_scheme == SignatureScheme.V1


def test_a_signature_scheme_for_token_verification_is_a_form_error_and_nothing_is_saved(tenant_admin, tenant):
    before = db_state()

    response = _add(tenant_admin, tenant, payload_format="heymarket", verification="token", signature_scheme="v1a")

    [message] = form_errors(response)["signature_scheme"]
    assert message.startswith("v1a is not sent: verification 'token' sends no signature.")
    assert db_state() == before


def test_leaving_the_scheme_out_keeps_the_stored_one(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, signature_scheme="both")

    _change(tenant_admin, endpoint, name="renamed")

    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.signature_scheme) == ("renamed", SignatureScheme.BOTH)


def test_rotate_signing_key_adds_a_key_and_the_old_one_shows_its_grace(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, signature_scheme="v1a")
    old = public_key(_signing_key(endpoint))
    v1_before = list(EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1").values_list("secret", "expires_at"))

    response = tenant_admin.post(admin_url("subscriptions_endpoint_rotate_signing_key", endpoint.pk), follow=True)

    assert response.redirect_chain == [(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]), 302)]
    [new, previous] = public_keys(endpoint, now=timezone.now())
    assert previous.public_key == old and new.public_key != old
    assert previous.expires_at > timezone.now() + dt.timedelta(hours=23) and new.expires_at is None
    page = text(response)
    assert page.index(new.public_key) < page.index(old)  # the primary first
    assert f"rotated out: signs until {previous.expires_at:%Y-%m-%d %H:%M} UTC" in page
    assert any(new.public_key in message for message in messages_shown(response))
    assert list(EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1").values_list("secret", "expires_at")) == (
        v1_before
    )
    _assert_nothing_private_on(page)


def test_rotate_signing_key_does_nothing_on_a_get(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)
    before = db_state()

    response = tenant_admin.get(admin_url("subscriptions_endpoint_rotate_signing_key", endpoint.pk))

    assert response.status_code == 302
    assert db_state() == before


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (lambda tenant, other: staff_client(tenant, Role.MANAGER), 403),
        (lambda tenant, other: staff_client(tenant, Role.USER), 403),
        (lambda tenant, other: staff_client(other, Role.ADMIN), 404),
    ],
    ids=["manager", "user", "other tenant's admin"],
)
def test_others_cannot_rotate_the_signing_key_and_no_key_is_added(tenant, other_tenant, caller, status):
    endpoint = endpoint_for(tenant, signature_scheme="v1a")
    client = caller(tenant, other_tenant)
    before = db_state()

    response = client.post(admin_url("subscriptions_endpoint_rotate_signing_key", endpoint.pk))

    assert response.status_code == status
    assert db_state() == before
    assert EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1a").count() == 1


def test_anonymous_callers_go_to_the_login_page_and_no_key_is_added(client, tenant):
    endpoint = endpoint_for(tenant)
    before = db_state()

    response = client.post(admin_url("subscriptions_endpoint_rotate_signing_key", endpoint.pk))

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert db_state() == before


def test_the_rotate_key_list_action_rotates_only_v1a_keys(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    tenant_admin.post(
        admin_url("subscriptions_endpoint_changelist"),
        {"action": "rotate_key", "_selected_action": [endpoint.pk]},
    )

    assert EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1a").count() == 2
    assert EndpointSecret.objects.filter(endpoint=endpoint, scheme="v1").count() == 1


# --- mutual TLS ---------------------------------------------------------------------------------------------


def test_a_valid_pair_is_saved_and_its_expiry_shown(tenant_admin, tenant, ca, pair):
    endpoint = endpoint_for(tenant)

    response = _change(
        tenant_admin,
        endpoint,
        tls_client_certificate=pair.certificate,
        tls_client_key=pair.key,
        tls_ca_certificate=ca.certificate,
    )

    certificate, key, ca_certificate, expires_at = _tls_columns(endpoint)
    assert (certificate, key, ca_certificate) == (pair.certificate, pair.key, ca.certificate)
    assert expires_at is not None and abs(expires_at - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(hours=1)
    page = _change_page(tenant_admin, endpoint)
    assert f"{expires_at:%Y-%m-%d %H:%M} UTC" in page
    assert "tls-expiry-warning" not in page
    _assert_nothing_private_on(text(response), pair.key)
    _assert_nothing_private_on(page, pair.key)


def test_a_key_that_is_not_the_certificates_is_a_form_error_and_nothing_changes(tenant_admin, tenant, ca, pair):
    endpoint = endpoint_for(tenant)
    other_key = ca.issue("someone else").key
    before, tls_before = db_state(), _tls_columns(endpoint)

    response = _change(tenant_admin, endpoint, tls_client_certificate=pair.certificate, tls_client_key=other_key)

    assert form_errors(response)["tls_client_key"] == ["This key does not belong to the client certificate."]
    assert (db_state(), _tls_columns(endpoint)) == (before, tls_before)
    _assert_nothing_private_on(text(response), other_key)  # not rendered back into the re-shown form


def test_a_certificate_without_its_key_is_a_form_error(tenant_admin, tenant, pair):
    before = db_state()

    response = _add(tenant_admin, tenant, tls_client_certificate=pair.certificate)

    assert form_errors(response)["tls_client_key"] == ["Give the private key of the client certificate (PEM)."]
    assert db_state() == before


def test_mutual_tls_needs_an_https_url(tenant_admin, tenant, pair, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"]}
    before = db_state()

    tls = {"tls_client_certificate": pair.certificate, "tls_client_key": pair.key}
    response = _add(tenant_admin, tenant, url="http://127.0.0.1/hook", **tls)

    assert form_errors(response)["tls_client_certificate"] == ["Mutual TLS and a private CA need an https:// URL."]
    assert db_state() == before


def test_a_certificate_expiring_in_5_days_is_warned_about(tenant_admin, tenant, ca):
    soon = ca.issue("hub client", not_after=timezone.now() + dt.timedelta(days=5, hours=1))

    _add(tenant_admin, tenant, tls_client_certificate=soon.certificate, tls_client_key=soon.key)

    endpoint = Endpoint.objects.get(tenant=tenant)
    page = _change_page(tenant_admin, endpoint)
    assert "tls-expiry-warning" in page
    assert "The client certificate expires in 5 days" in page


def test_a_blank_key_keeps_the_stored_one_when_other_settings_change(tenant_admin, tenant, pair):
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)

    _change(tenant_admin, endpoint, name="renamed", tls_client_certificate=pair.certificate)

    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.tls_client_key) == ("renamed", pair.key)


def test_an_endpoint_whose_certificate_lapsed_can_still_be_renamed(tenant_admin, tenant, ca, pair):
    lapsed = ca.issue("hub client", not_before=timezone.now() - dt.timedelta(days=30), not_after=timezone.now())
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)
    Endpoint.objects.filter(pk=endpoint.pk).update(tls_client_certificate=lapsed.certificate, tls_client_key=lapsed.key)

    _change(tenant_admin, endpoint, name="renamed", tls_client_certificate=lapsed.certificate)

    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.tls_client_key) == ("renamed", lapsed.key)


def test_clearing_the_certificate_removes_the_key(tenant_admin, tenant, pair):
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)

    _change(tenant_admin, endpoint, tls_client_certificate="")

    assert _tls_columns(endpoint) == ("", None, "", None)


def test_the_change_page_shows_the_certificate_but_never_the_key(tenant_admin, tenant, pair):
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)

    page = _change_page(tenant_admin, endpoint)

    assert pair.certificate.strip().splitlines()[1] in page
    assert "A key is stored (encrypted; never shown)." in page
    _assert_nothing_private_on(page, pair.key)


# --- nothing private on any page ----------------------------------------------------------------------------


def test_no_page_shows_the_client_secret_the_tls_key_or_a_signing_key(tenant_admin, tenant, ca, pair):
    endpoint = endpoint_for(
        tenant,
        auth_type="oauth2",
        auth=OAUTH2_STORED,
        signature_scheme="both",
        tls_client_certificate=pair.certificate,
        tls_client_key=pair.key,
        tls_ca_certificate=ca.certificate,
    )
    signing_key = _signing_key(endpoint).removeprefix("whsk_")
    pages = {
        "change": admin_url("subscriptions_endpoint_change", endpoint.pk),
        "list": admin_url("subscriptions_endpoint_changelist"),
        "dashboard": dashboard_url("endpoint", endpoint.pk),
    }

    for name, page_url in pages.items():
        response = tenant_admin.get(page_url)
        assert response.status_code == 200, name
        _assert_nothing_private_on(text(response), CLIENT_SECRET, pair.key, signing_key)
