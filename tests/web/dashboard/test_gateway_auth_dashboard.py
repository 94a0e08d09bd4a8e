"""The dashboard's endpoint page for receivers behind gateways: auth type (OAuth2's token URL and client id, never
its secret), the signature scheme and public keys, and the TLS client certificate's expiry with its warning."""

import datetime as dt

import pytest
from django.utils import timezone

from subscriptions.models import Endpoint, EndpointSecret
from subscriptions.selectors import public_keys
from subscriptions.services import rotate_signing_key
from tests.factories import endpoint_for
from tests.support.tls import CertificateAuthority
from tests.web.dashboard.support import page, section, url

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "oauth2-client-SECRET-0005"
OAUTH2 = {
    "token_url": "https://93.184.216.34/oauth/token",
    "client_id": "hub-client",
    "client_secret": CLIENT_SECRET,
    "client_auth": "basic",
}


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority()


def _security(client, endpoint) -> str:
    response = client.get(url("endpoint", endpoint.pk))
    assert response.status_code == 200
    return section(response, "security")


def test_the_page_shows_the_signature_scheme_and_the_public_key(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, signature_scheme="v1a")
    [key] = public_keys(endpoint, now=timezone.now())

    shown = _security(tenant_admin, endpoint)

    assert "v1a: Ed25519, receivers hold only the public key" in shown
    assert key.public_key in shown and "primary" in shown


def test_a_rotated_out_key_is_listed_after_the_primary_with_its_end(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, signature_scheme="both")
    [old] = public_keys(endpoint, now=timezone.now())
    new = rotate_signing_key(endpoint=endpoint)
    [_, rotated_out] = public_keys(endpoint, now=timezone.now())

    shown = _security(tenant_admin, endpoint)

    assert shown.index(new) < shown.index(old.public_key)
    assert f"signs until {rotated_out.expires_at:%Y-%m-%d %H:%M} UTC" in shown


def test_an_oauth2_endpoint_shows_its_token_url_and_client_id_never_its_secret(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, auth_type="oauth2", auth=OAUTH2)

    response = tenant_admin.get(url("endpoint", endpoint.pk))

    shown = section(response, "security")
    assert "OAuth2 client credentials" in shown
    assert OAUTH2["token_url"] in shown and "hub-client" in shown
    assert CLIENT_SECRET not in page(response)


def test_the_page_never_shows_a_private_key(tenant_admin, tenant, ca):
    pair = ca.issue("hub client")
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)
    signing_key = EndpointSecret.objects.get(endpoint=endpoint, scheme="v1a").secret

    content = page(tenant_admin.get(url("endpoint", endpoint.pk)))

    assert pair.key.strip().splitlines()[1] not in content
    assert signing_key.removeprefix("whsk_") not in content and "whsk_" not in content


def test_the_client_certificates_expiry_is_shown(tenant_admin, tenant, ca):
    pair = ca.issue("hub client")
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)
    expires_at = Endpoint.objects.get(pk=endpoint.pk).tls_client_certificate_expires_at

    response = tenant_admin.get(url("endpoint", endpoint.pk))

    assert f"presented; expires {expires_at:%Y-%m-%d %H:%M} UTC" in section(response, "security")
    assert 'id="tls-expiry-warning"' not in page(response)


def test_a_certificate_expiring_in_5_days_is_warned_about(tenant_admin, tenant, ca):
    soon = ca.issue("hub client", not_after=timezone.now() + dt.timedelta(days=5, hours=1))
    endpoint = endpoint_for(tenant, tls_client_certificate=soon.certificate, tls_client_key=soon.key)

    shown = _security(tenant_admin, endpoint)

    assert 'id="tls-expiry-warning"' in shown
    assert "The client certificate expires in 5 days" in shown


def test_an_expired_certificate_is_warned_about(tenant_admin, tenant, ca):
    pair = ca.issue("hub client")
    endpoint = endpoint_for(tenant, tls_client_certificate=pair.certificate, tls_client_key=pair.key)
    expired = timezone.now() - dt.timedelta(hours=2)
    Endpoint.objects.filter(pk=endpoint.pk).update(tls_client_certificate_expires_at=expired)  # time passed

    shown = _security(tenant_admin, endpoint)

    assert f"The client certificate expired on {expired:%Y-%m-%d %H:%M} UTC" in shown


def test_an_endpoint_without_gateway_auth_says_so(tenant_admin, endpoint):
    shown = _security(tenant_admin, endpoint)

    assert "v1: HMAC-SHA256 with a shared secret" in shown
    assert '<td id="tls-client-certificate">none</td>' in shown
    assert 'id="oauth2-token-url"' not in shown
