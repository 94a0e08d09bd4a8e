"""/api/v1/endpoints/: receivers behind gateways. OAuth2 client credentials as an auth type (the client secret
write-only), mutual TLS (the key write-only, the certificate checked and its expiry shown), and v1a (Ed25519)
signatures: the scheme, the public keys and their rotation. No secret or private key is ever answered."""

import base64
import datetime as dt
import re

import nacl.exceptions
import nacl.signing
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from deliveries.signing import sign
from subscriptions.keys import public_key
from subscriptions.models import AuthType, Endpoint, EndpointSecret
from tests.factories import URL, endpoint_for
from tests.support.db import db_state, rows
from tests.support.tls import CertificateAuthority, Pair
from tests.web.api.support import API, key_client, session_client

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "oauth2-client-SECRET-0005"
OAUTH2 = {
    "type": "oauth2",
    "token_url": "https://93.184.216.34/oauth/token",
    "client_id": "webhookhub-sender",
    "client_secret": CLIENT_SECRET,
    "scope": "webhooks.write",
    "audience": "https://hooks.example.com",
    "client_auth": "post",
}
PEM_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
TLS_FIELDS = (
    "signature_scheme",
    "tls_client_certificate",
    "tls_client_key",
    "tls_ca_certificate",
    "tls_client_certificate_expires_at",
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def pair(ca) -> Pair:
    return ca.issue("webhookhub sender")


def _snapshot() -> dict:
    return {**db_state(), "gateway": rows(Endpoint, *TLS_FIELDS)}


def _create(client, **fields):
    return client.post(API + "/endpoints/", {"url": URL, **fields}, format="json")


def _detail(endpoint_id: str) -> str:
    return f"{API}/endpoints/{endpoint_id}/"


def _expires_at(certificate_pem: str) -> dt.datetime:
    return x509.load_pem_x509_certificate(certificate_pem.encode()).not_valid_after_utc


def _renewed(pair: Pair, *, days: int) -> str:
    """A new certificate for the same key, valid ``days`` more days (self-signed: the API does not check the
    chain, only that the key belongs to the certificate)."""
    key = serialization.load_pem_private_key(pair.key.encode(), password=None)
    old = x509.load_pem_x509_certificate(pair.certificate.encode())
    now = dt.datetime.now(dt.UTC)
    renewed = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.subject)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return renewed.public_bytes(serialization.Encoding.PEM).decode()


def _password_protected(pair: Pair) -> str:
    key = serialization.load_pem_private_key(pair.key.encode(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    return encrypted.decode()


def _signing_keys(endpoint_id: str) -> list[EndpointSecret]:
    return list(EndpointSecret.objects.filter(endpoint_id=endpoint_id, scheme="v1a").order_by("-created_at", "-id"))


def _assert_no_private_material(content: bytes, *values: str) -> None:
    text = content.decode()
    assert "whsk_" not in text
    assert not PEM_KEY_END.search(text)  # no PEM key of any kind (error messages may name the header)
    for value in values:
        assert value not in text


# --- OAuth2 client credentials -----------------------------------------------------------------------------------


def test_create_with_oauth2_stores_it_and_reads_show_all_but_the_secret(admin):
    response = _create(admin, auth=OAUTH2)

    assert response.status_code == 201, response.content
    shown = {**OAUTH2, "client_secret": "****0005"}
    assert response.json()["auth"] == shown
    endpoint = Endpoint.objects.get(pk=response.json()["id"])
    assert endpoint.auth_type == AuthType.OAUTH2
    assert endpoint.auth == {key: value for key, value in OAUTH2.items() if key != "type"}
    detail = admin.get(_detail(endpoint.pk))
    listed = admin.get(API + "/endpoints/")
    assert detail.json()["auth"] == shown
    for answer in (response, detail, listed):
        assert CLIENT_SECRET not in answer.content.decode()


def test_oauth2_without_scope_audience_or_client_auth_defaults_to_basic(admin):
    given = {key: OAUTH2[key] for key in ("type", "token_url", "client_id", "client_secret")}

    response = _create(admin, auth=given)

    assert response.status_code == 201, response.content
    assert response.json()["auth"] == {
        **given,
        "client_secret": "****0005",
        "scope": "",
        "audience": "",
        "client_auth": "basic",
    }


def test_patch_to_oauth2_replaces_the_auth_and_never_answers_the_secret(admin):
    created = _create(admin, auth={"type": "bearer", "token": "tok-bearer-0123456789"}).json()

    response = admin.patch(_detail(created["id"]), {"auth": OAUTH2}, format="json")
    rescoped = admin.patch(
        _detail(created["id"]), {"auth": {**OAUTH2, "scope": "webhooks.read webhooks.write"}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert rescoped.status_code == 200, rescoped.content
    assert rescoped.json()["auth"] == {**OAUTH2, "client_secret": "****0005", "scope": "webhooks.read webhooks.write"}
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert (endpoint.auth_type, endpoint.auth["scope"]) == (AuthType.OAUTH2, "webhooks.read webhooks.write")
    for answer in (response, rescoped, admin.get(_detail(created["id"]))):
        assert CLIENT_SECRET not in answer.content.decode()


def test_a_patch_of_other_fields_keeps_the_oauth2_auth(admin):
    created = _create(admin, auth=OAUTH2).json()

    response = admin.patch(_detail(created["id"]), {"name": "behind the gateway"}, format="json")

    assert response.status_code == 200, response.content
    assert Endpoint.objects.get(pk=created["id"]).auth["client_secret"] == CLIENT_SECRET
    assert CLIENT_SECRET not in response.content.decode()


@pytest.mark.parametrize(
    "token_url",
    ["http://169.254.169.254/token", "https://10.0.0.8/token", "ftp://93.184.216.34/token", "not a url"],
)
def test_a_token_url_the_address_policy_refuses_is_a_400_naming_auth(admin, token_url):
    before = _snapshot()

    response = _create(admin, auth={**OAUTH2, "token_url": token_url})

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["auth"]
    assert "token_url" in errors["auth"][0]
    assert _snapshot() == before


def test_a_token_url_refused_on_patch_changes_nothing(admin):
    created = _create(admin, auth=OAUTH2).json()
    before = _snapshot()

    response = admin.patch(
        _detail(created["id"]), {"auth": {**OAUTH2, "token_url": "http://169.254.169.254/token"}}, format="json"
    )

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["auth"]
    assert _snapshot() == before


def test_an_unknown_oauth2_key_is_refused_by_name(admin):
    before = _snapshot()

    response = _create(admin, auth={**OAUTH2, "grant_type": "password"})

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["auth.grant_type"]
    assert errors["auth.grant_type"][0].startswith("Unknown field 'grant_type'")
    assert _snapshot() == before


def test_a_key_of_another_auth_type_is_refused_for_oauth2(admin):
    before = _snapshot()

    response = _create(admin, auth={**OAUTH2, "token": "tok-0123456789"})

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {
        "auth": [
            "oauth2 auth has no 'token'; it takes token_url, client_id, client_secret, scope, audience, client_auth."
        ]
    }
    assert _snapshot() == before


def test_a_bad_client_auth_is_refused(admin):
    before = _snapshot()

    response = _create(admin, auth={**OAUTH2, "client_auth": "private_key_jwt"})

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["auth.client_auth"]
    assert "private_key_jwt" in errors["auth.client_auth"][0]
    assert _snapshot() == before


@pytest.mark.parametrize("missing", ["token_url", "client_id", "client_secret"])
def test_oauth2_without_a_required_value_is_refused_naming_it(admin, missing):
    before = _snapshot()

    response = _create(admin, auth={key: value for key, value in OAUTH2.items() if key != missing})

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"auth": [f"oauth2 auth needs a non-empty {missing!r}."]}
    assert _snapshot() == before


# --- mutual TLS -----------------------------------------------------------------------------------------------


def test_create_with_a_valid_pair_shows_the_certificate_and_its_expiry_but_never_the_key(admin, ca, pair):
    response = _create(
        admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key, tls_ca_certificate=ca.certificate
    )

    assert response.status_code == 201, response.content
    body = response.json()
    expires_at = _expires_at(pair.certificate)
    assert dt.datetime.fromisoformat(body["tls_client_certificate_expires_at"]) == expires_at
    assert body["tls_client_key_set"] is True
    assert body["tls_client_certificate_warning"] is None  # 30 days left
    assert body["tls_client_certificate"].strip() == pair.certificate.strip()
    assert body["tls_ca_certificate"].strip() == ca.certificate.strip()
    assert "tls_client_key" not in body
    endpoint = Endpoint.objects.get(pk=body["id"])
    assert endpoint.tls_client_key.strip() == pair.key.strip()
    assert endpoint.tls_client_certificate_expires_at == expires_at
    detail = admin.get(_detail(endpoint.pk))
    assert detail.json()["tls_client_key_set"] is True
    for answer in (response, detail, admin.get(API + "/endpoints/")):
        _assert_no_private_material(answer.content, pair.key.strip())


def test_an_endpoint_without_tls_reads_empty_values(admin):
    body = _create(admin).json()

    assert {name: body[name] for name in body if name.startswith("tls_")} == {
        "tls_client_certificate": "",
        "tls_client_key_set": False,
        "tls_ca_certificate": "",
        "tls_client_certificate_expires_at": None,
        "tls_client_certificate_warning": None,
    }


def _refused(admin, **fields) -> dict[str, list[str]]:
    before = _snapshot()
    response = _create(admin, **fields)
    assert response.status_code == 400, response.content
    assert _snapshot() == before
    _assert_no_private_material(response.content)
    return response.json()["errors"]


def test_a_key_that_does_not_match_the_certificate_is_refused(admin, ca, pair):
    other = ca.issue("someone else")

    errors = _refused(admin, tls_client_certificate=pair.certificate, tls_client_key=other.key)

    assert errors == {"tls_client_key": ["This key does not belong to the client certificate."]}


def test_an_expired_certificate_is_refused(admin, ca):
    now = dt.datetime.now(dt.UTC)
    expired = ca.issue("expired", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))

    errors = _refused(admin, tls_client_certificate=expired.certificate, tls_client_key=expired.key)

    assert list(errors) == ["tls_client_certificate"]
    assert errors["tls_client_certificate"][0].startswith("The certificate expired on ")


def test_a_password_protected_key_is_refused(admin, pair):
    errors = _refused(admin, tls_client_certificate=pair.certificate, tls_client_key=_password_protected(pair))

    assert list(errors) == ["tls_client_key"]
    assert "protected by a password" in errors["tls_client_key"][0]


def test_an_endpoint_whose_certificate_lapsed_can_still_be_edited_with_it_sent_back(admin, ca):
    now = dt.datetime.now(dt.UTC)
    lapsed = ca.issue("lapsed", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    created = _create(admin).json()
    stored = {"tls_client_certificate": lapsed.certificate, "tls_client_key": lapsed.key}
    Endpoint.objects.filter(pk=created["id"]).update(**stored)  # valid when saved; time passed

    body = {"name": "renamed", "url": URL, "tls_client_certificate": lapsed.certificate}  # a read, sent back
    response = admin.patch(_detail(created["id"]), body, format="json")
    again = _create(admin, **stored)

    assert response.status_code == 200, response.content
    assert Endpoint.objects.get(pk=created["id"]).name == "renamed"
    assert again.status_code == 400  # as a new certificate it is refused
    assert again.json()["errors"]["tls_client_certificate"][0].startswith("The certificate expired on ")


def test_a_certificate_on_an_http_url_is_refused(admin, pair):
    errors = _refused(
        admin, url="http://93.184.216.34/hook", tls_client_certificate=pair.certificate, tls_client_key=pair.key
    )

    assert errors == {"tls_client_certificate": ["Mutual TLS and a private CA need an https:// URL."]}


def test_a_ca_certificate_on_an_http_url_is_refused(admin, ca):
    errors = _refused(admin, url="http://93.184.216.34/hook", tls_ca_certificate=ca.certificate)

    assert errors == {"tls_ca_certificate": ["Mutual TLS and a private CA need an https:// URL."]}


@pytest.mark.parametrize(
    ("field", "garbage"),
    [
        ("tls_client_certificate", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"),
        ("tls_client_certificate", "hello"),
        ("tls_client_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ("tls_ca_certificate", "\u00e9t\u00e9 -----BEGIN CERTIFICATE-----"),
    ],
)
def test_garbage_pem_is_refused_naming_the_field(admin, pair, field, garbage):
    given = {"tls_client_certificate": pair.certificate, "tls_client_key": pair.key, field: garbage}
    if field == "tls_ca_certificate":
        given = {field: garbage}

    errors = _refused(admin, **given)

    assert list(errors) == [field]
    assert "PEM" in errors[field][0]


@pytest.mark.parametrize("field", ["tls_client_certificate", "tls_ca_certificate"])
def test_pem_with_text_that_is_not_ascii_is_refused(admin, ca, pair, field):
    given = {
        "tls_client_certificate": {
            "tls_client_certificate": "\u00e9t\u00e9\n" + pair.certificate,
            "tls_client_key": pair.key,
        },
        "tls_ca_certificate": {"tls_ca_certificate": "\u00e9t\u00e9\n" + ca.certificate},
    }[field]

    errors = _refused(admin, **given)

    assert errors == {field: ["PEM is ASCII text: remove the characters that are not."]}


@pytest.mark.parametrize("field", ["tls_client_certificate", "tls_ca_certificate"])
def test_a_private_key_pasted_with_a_certificate_is_refused_and_never_shown(admin, ca, pair, field):
    """Certificates are shown on reads: a key pasted with one (a combined .pem file) would be shown too."""
    given = {
        "tls_client_certificate": {"tls_client_certificate": pair.certificate + pair.key, "tls_client_key": pair.key},
        "tls_ca_certificate": {"tls_ca_certificate": ca.certificate + pair.key},
    }[field]

    errors = _refused(admin, **given)

    assert errors == {
        field: ["This holds a private key: give the certificate alone here, and its key in tls_client_key."]
    }


def test_a_nul_character_in_pem_is_refused(admin, pair):
    errors = _refused(admin, tls_client_certificate=pair.certificate + "\x00", tls_client_key=pair.key)

    assert list(errors) == ["tls_client_certificate"]


def test_a_certificate_without_its_key_is_refused(admin, pair):
    errors = _refused(admin, tls_client_certificate=pair.certificate)

    assert errors == {"tls_client_key": ["Give the private key of the client certificate (PEM)."]}


def test_a_certificate_expiring_in_5_days_carries_a_warning(admin, ca):
    soon = ca.issue("soon", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=5, hours=2))

    response = _create(admin, tls_client_certificate=soon.certificate, tls_client_key=soon.key)

    assert response.status_code == 201, response.content
    expires_at = _expires_at(soon.certificate)
    warning = f"The client certificate expires in 5 days ({expires_at:%Y-%m-%d %H:%M} UTC): upload its renewal."
    assert response.json()["tls_client_certificate_warning"] == warning
    assert admin.get(_detail(response.json()["id"])).json()["tls_client_certificate_warning"] == warning


def test_a_renewal_with_the_same_key_needs_no_key(admin, pair):
    created = _create(admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key).json()
    renewal = _renewed(pair, days=90)

    response = admin.patch(_detail(created["id"]), {"tls_client_certificate": renewal}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tls_client_key_set"] is True
    assert dt.datetime.fromisoformat(body["tls_client_certificate_expires_at"]) == _expires_at(renewal)
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert endpoint.tls_client_certificate.strip() == renewal.strip()
    assert endpoint.tls_client_key.strip() == pair.key.strip()
    _assert_no_private_material(response.content, pair.key.strip())


def test_a_new_certificate_of_another_key_without_that_key_is_refused(admin, ca, pair):
    created = _create(admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key).json()
    before = _snapshot()

    response = admin.patch(
        _detail(created["id"]), {"tls_client_certificate": ca.issue("new key").certificate}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"tls_client_key": ["This key does not belong to the client certificate."]}
    assert _snapshot() == before


def test_a_new_pair_replaces_the_old_one(admin, ca, pair):
    created = _create(admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key).json()
    new = ca.issue("next year")

    response = admin.patch(
        _detail(created["id"]), {"tls_client_certificate": new.certificate, "tls_client_key": new.key}, format="json"
    )

    assert response.status_code == 200, response.content
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert endpoint.tls_client_key.strip() == new.key.strip()
    _assert_no_private_material(response.content, new.key.strip(), pair.key.strip())


@pytest.mark.parametrize("cleared", ["", None])
def test_clearing_the_certificate_drops_the_key(admin, pair, cleared):
    created = _create(admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key).json()

    response = admin.patch(_detail(created["id"]), {"tls_client_certificate": cleared}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["tls_client_certificate"], body["tls_client_key_set"]) == ("", False)
    assert body["tls_client_certificate_expires_at"] is None
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert (endpoint.tls_client_certificate, endpoint.tls_client_key) == ("", None)


def test_a_patch_to_an_http_url_with_a_certificate_is_refused(admin, pair):
    created = _create(admin, tls_client_certificate=pair.certificate, tls_client_key=pair.key).json()
    before = _snapshot()

    response = admin.patch(_detail(created["id"]), {"url": "http://93.184.216.34/hook"}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["tls_client_certificate"]
    assert _snapshot() == before


@pytest.mark.parametrize("field", ["tls_client_key_set", "tls_client_certificate_expires_at"])
def test_the_read_only_tls_fields_cannot_be_written(admin, field):
    created = _create(admin).json()

    response = admin.patch(_detail(created["id"]), {field: created[field]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        field: [f"{field!r} is read-only: it cannot be written. Leave it out of the request."]
    }


# --- v1a signatures: scheme, public keys, rotation -----------------------------------------------------------


def test_the_signature_scheme_defaults_to_v1_and_is_written(admin):
    created = _create(admin).json()

    response = admin.patch(_detail(created["id"]), {"signature_scheme": "both"}, format="json")
    made = _create(admin, signature_scheme="v1a")

    assert created["signature_scheme"] == "v1"
    assert response.status_code == 200 and response.json()["signature_scheme"] == "both"
    assert Endpoint.objects.get(pk=created["id"]).signature_scheme == "both"
    assert made.status_code == 201 and made.json()["signature_scheme"] == "v1a"


@pytest.mark.parametrize("scheme", ["v2", "V1A", "", None, 1])
def test_a_bad_signature_scheme_is_refused_naming_it(admin, scheme):
    created = _create(admin).json()
    before = _snapshot()

    response = admin.patch(_detail(created["id"]), {"signature_scheme": scheme}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["signature_scheme"]
    assert _snapshot() == before


@pytest.mark.parametrize("scheme", ["v1a", "both"])
def test_a_signature_scheme_for_token_verification_which_sends_none_is_refused(admin, scheme):
    before = _snapshot()

    response = _create(admin, payload_format="heymarket", verification="token", signature_scheme=scheme)

    assert response.status_code == 400, response.content
    [message] = response.json()["errors"]["signature_scheme"]
    assert message.startswith(f"{scheme} is not sent: verification 'token' sends no signature.")
    assert _snapshot() == before


def test_switching_to_token_verification_with_v1a_signing_is_refused_and_changes_nothing(admin):
    created = _create(admin, payload_format="heymarket", verification="both", signature_scheme="v1a").json()
    before = _snapshot()

    refused = admin.patch(_detail(created["id"]), {"verification": "token"}, format="json")
    together = admin.patch(_detail(created["id"]), {"verification": "token", "signature_scheme": "v1"}, format="json")

    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["signature_scheme"]
    assert together.status_code == 200, together.content
    assert before != _snapshot()  # the second one changed it
    endpoint = Endpoint.objects.get(pk=created["id"])
    assert (endpoint.verification, endpoint.signature_scheme) == ("token", "v1")


def test_public_key_is_the_public_half_of_the_stored_signing_key(admin):
    created = _create(admin, signature_scheme="v1a").json()
    [stored] = _signing_keys(created["id"])

    response = admin.get(_detail(created["id"]) + "public-key/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["public_key"].startswith("whpk_")
    assert body["public_key"] == public_key(stored.secret)
    [only] = body["keys"]
    assert (only["public_key"], only["expires_at"]) == (body["public_key"], None)
    assert dt.datetime.fromisoformat(only["created_at"]) == stored.created_at
    _assert_no_private_material(response.content, stored.secret)
    # A receiver holding only the public key verifies what the platform signs with the private one (PyNaCl:
    # libsodium, not the cryptography package that signed it).
    signed = sign(secret=stored.secret, msg_id="evt_1", timestamp=1_763_800_000, body=b'{"a":1}')
    scheme, signature = signed.split(",", 1)
    raw = base64.b64decode(body["public_key"].removeprefix("whpk_"))
    assert (scheme, len(raw)) == ("v1a", 32)
    nacl.signing.VerifyKey(raw).verify(b'evt_1.1763800000.{"a":1}', base64.b64decode(signature))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(raw).verify(b'evt_1.1763800001.{"a":1}', base64.b64decode(signature))


def test_every_endpoint_has_a_public_key_whatever_its_scheme(admin):
    created = _create(admin).json()  # v1: the key is there before the scheme changes

    response = admin.get(_detail(created["id"]) + "public-key/")

    assert response.status_code == 200
    assert response.json()["public_key"].startswith("whpk_")


def test_rotate_signing_key_answers_the_new_public_key_and_the_old_one_still_signs(admin):
    created = _create(admin, signature_scheme="both").json()
    [old] = _signing_keys(created["id"])

    response = admin.post(_detail(created["id"]) + "rotate-signing-key/")

    assert response.status_code == 200, response.content
    new_public = response.json()["public_key"]
    assert set(response.json()) == {"public_key"}
    new, still = _signing_keys(created["id"])
    assert still.pk == old.pk
    assert new_public == public_key(new.secret) != public_key(old.secret)
    _assert_no_private_material(response.content, new.secret, old.secret)
    keys = admin.get(_detail(created["id"]) + "public-key/").json()
    assert keys["public_key"] == new_public
    assert [key["public_key"] for key in keys["keys"]] == [new_public, public_key(old.secret)]
    assert keys["keys"][0]["expires_at"] is None
    assert dt.datetime.fromisoformat(keys["keys"][1]["expires_at"]) > timezone.now()  # the grace period
    secret = admin.get(_detail(created["id"]) + "secret/")
    assert secret.json() == {"secret": created["secret"]}  # the v1 secret is untouched
    assert secret.json()["secret"].startswith("whsec_")


def test_rotate_signing_key_refuses_a_body_and_adds_no_key(admin):
    created = _create(admin).json()
    before = _snapshot()

    response = admin.post(_detail(created["id"]) + "rotate-signing-key/", {"scheme": "v1a"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"scheme": ["Unknown field 'scheme': this action takes no body."]}
    assert _snapshot() == before


def test_no_endpoint_answer_holds_a_private_key(admin, pair):
    created = _create(
        admin, signature_scheme="both", tls_client_certificate=pair.certificate, tls_client_key=pair.key
    ).json()
    path = _detail(created["id"])
    admin.post(path + "rotate-signing-key/")
    answers = [
        admin.get(API + "/endpoints/"),
        admin.get(path),
        admin.get(path + "secret/"),
        admin.get(path + "public-key/"),
        admin.patch(path, {"name": "renamed"}, format="json"),
        admin.post(path + "rotate-secret/"),
    ]

    stored = [key.secret for key in _signing_keys(created["id"])]
    assert len(stored) == 2
    for answer in answers:
        assert answer.status_code == 200, answer.content
        _assert_no_private_material(answer.content, pair.key.strip(), *stored)


# --- who may read public keys and rotate -------------------------------------------------------------------


REFUSED = {
    "anonymous": (lambda tenant, other: APIClient(), 401),
    "manager key": (lambda tenant, other: key_client(tenant, Role.MANAGER), 403),
    "user key": (lambda tenant, other: key_client(tenant, Role.USER), 403),
    "session manager": (lambda tenant, other: session_client(tenant, Role.MANAGER), 403),
    "session user": (lambda tenant, other: session_client(tenant, Role.USER), 403),
    "admin key of another tenant": (lambda tenant, other: key_client(other), 404),
    "session admin of another tenant": (lambda tenant, other: session_client(other, Role.ADMIN), 404),
}


@pytest.mark.parametrize("caller", list(REFUSED))
def test_rotate_signing_key_is_refused_to_all_but_the_tenants_admins_and_adds_no_key(caller, tenant, other_tenant):
    endpoint = endpoint_for(tenant)
    make_client, status = REFUSED[caller]
    client = make_client(tenant, other_tenant)
    keys_before = EndpointSecret.objects.count()
    before = _snapshot()

    response = client.post(_detail(endpoint.pk) + "rotate-signing-key/")

    assert response.status_code == status, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert EndpointSecret.objects.count() == keys_before
    assert _snapshot() == before


@pytest.mark.parametrize("caller", list(REFUSED))
def test_public_key_is_refused_to_all_but_the_tenants_admins(caller, tenant, other_tenant):
    endpoint = endpoint_for(tenant)
    make_client, status = REFUSED[caller]

    response = make_client(tenant, other_tenant).get(_detail(endpoint.pk) + "public-key/")

    assert response.status_code == status, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert "whpk_" not in response.content.decode()


@pytest.mark.parametrize("role_client", ["admin key", "session admin"])
def test_the_tenants_admins_may_read_and_rotate(role_client, tenant):
    endpoint = endpoint_for(tenant)
    client = key_client(tenant) if role_client == "admin key" else session_client(tenant, Role.ADMIN)

    read = client.get(_detail(endpoint.pk) + "public-key/")
    rotated = client.post(_detail(endpoint.pk) + "rotate-signing-key/")

    assert read.status_code == 200 and rotated.status_code == 200
    assert len(_signing_keys(endpoint.pk)) == 2


# --- the schema --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get(API + "/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_the_schema_documents_oauth2_with_a_write_only_client_secret(schema):
    auth = schema["components"]["schemas"]["AuthRequest"]["properties"]

    assert auth["client_secret"]["writeOnly"] is True
    assert {"token_url", "client_id", "scope", "audience", "client_auth"} <= set(auth)
    assert "oauth2" in schema["components"]["schemas"]["TypeEnum"]["enum"]
    client_auth = auth["client_auth"]["allOf"][0]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][client_auth]["enum"] == ["basic", "post"]


def test_the_schema_documents_the_tls_fields_with_a_write_only_key(schema):
    components = schema["components"]["schemas"]
    write = components["EndpointWriteRequest"]["properties"]
    read = components["Endpoint"]["properties"]

    assert write["tls_client_key"]["writeOnly"] is True
    assert {"signature_scheme", "tls_client_certificate", "tls_ca_certificate"} <= set(write)
    assert "tls_client_key" not in read
    assert read["tls_client_key_set"]["type"] == "boolean"
    assert read["tls_client_certificate_expires_at"]["nullable"] is True
    assert read["tls_client_certificate_warning"]["nullable"] is True
    assert components["SignatureSchemeEnum"]["enum"] == ["v1", "v1a", "both"]
    assert components["EndpointWriteRequest"]["additionalProperties"] is False


def test_the_schema_documents_the_public_key_routes(schema):
    public = schema["paths"]["/api/v1/endpoints/{id}/public-key/"]["get"]
    rotate = schema["paths"]["/api/v1/endpoints/{id}/rotate-signing-key/"]["post"]

    keys_ref = public["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    rotated_ref = rotate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = schema["components"]["schemas"]
    assert set(components[keys_ref]["properties"]) == {"public_key", "keys"}
    assert set(components[rotated_ref]["properties"]) == {"public_key"}
    assert "requestBody" not in rotate
    assert {"401", "403", "404"} <= set(public["responses"]) and {"401", "403", "404"} <= set(rotate["responses"])
