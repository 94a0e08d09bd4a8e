import datetime as dt
import hashlib
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey, Tenant
from accounts.services import authenticate_api_key
from events.models import Event
from subscriptions.models import Endpoint, EndpointSecret
from subscriptions.selectors import public_keys
from subscriptions.services import primary_secret
from tests.factories import URL, TenantFactory, make_endpoint
from tests.support.processes import database_url
from tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_private_networks(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}


def _run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def _raw_column(table: str, column: str, pk_column: str, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {pk_column} = %s", [pk])  # noqa: S608 (fixed names)
        [(value,)] = cursor.fetchall()
    return value


def test_create_tenant_prints_its_id_last():
    lines = _run("create_tenant", "acme", "--name", "Acme Inc")

    tenant = Tenant.objects.get(slug="acme")
    assert lines[-1] == tenant.pk
    assert tenant.name == "Acme Inc"


def test_create_tenant_with_a_taken_slug_is_refused():
    TenantFactory(slug="acme")

    with pytest.raises(CommandError, match="already exists"):
        _run("create_tenant", "acme")

    assert Tenant.objects.filter(slug="acme").count() == 1


def test_create_tenant_with_an_invalid_slug_is_refused():
    with pytest.raises(CommandError):
        _run("create_tenant", "not a slug")

    assert not Tenant.objects.exists()


def test_create_api_key_prints_the_key_last_and_stores_only_its_hash(tenant):
    key = _run("create_api_key", "--tenant", tenant.slug)[-1]

    api_key = ApiKey.objects.get(tenant=tenant)
    assert key.startswith("whk_")
    assert api_key.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert not [field for field, value in row.items() if key in str(value)]
    assert authenticate_api_key(key) == api_key


def test_create_api_key_for_an_unknown_tenant_is_refused(tenant):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        _run("create_api_key", "--tenant", "nope")

    assert not ApiKey.objects.exists()


def test_add_endpoint_prints_the_secret_last_and_stores_it_encrypted(tenant):
    token = "bearer-token-6c1f0d2e9a"

    lines = _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, "--bearer", token)

    secret = lines[-1]
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert secret.startswith("whsec_")
    assert endpoint.pk in lines
    assert (endpoint.url, endpoint.event_types, endpoint.auth) == (URL, ["*"], {"token": token})
    stored = EndpointSecret.objects.get(endpoint=endpoint, scheme="v1")
    assert stored.secret == secret
    raw_secret = _raw_column("subscriptions_endpointsecret", "secret", "id", stored.pk)
    assert secret.removeprefix("whsec_") not in raw_secret
    assert token not in _raw_column("subscriptions_endpoint", "auth", "id", endpoint.pk)


def test_add_endpoint_subscribes_to_the_given_types(tenant):
    types = ["--event-type", "message.received", "--event-type", "chat.opened"]

    _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, *types)

    assert Endpoint.objects.get(tenant=tenant).event_types == ["message.received", "chat.opened"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope", "--url", URL], "No tenant"),
        (["--url", "ftp://93.184.216.34/hook"], "url: "),
        (["--url", "http://10.0.0.1/hook"], "not a public address"),
        (["--url", URL, "--event-type", "no.such_type"], "Unknown event type"),
        (["--url", URL, "--basic", "no-colon"], "USER:PASSWORD"),
        (["--url", URL, "--api-key-header", "X-Key:"], "auth: "),
    ],
)
def test_add_endpoint_with_bad_arguments_is_refused(tenant, settings, args, message):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}
    if "--tenant" not in args:
        args = ["--tenant", tenant.slug, *args]

    with pytest.raises(CommandError, match=message):
        _run("add_endpoint", *args)

    assert not Endpoint.objects.exists()


def test_add_endpoint_with_a_malformed_ipv6_url_is_refused(tenant):
    with pytest.raises(CommandError):
        _run("add_endpoint", "--tenant", tenant.slug, "--url", "http://[::1/hook")


# --- add_endpoint: OAuth2, signature scheme, mutual TLS ---------------------------------------------------------

CLIENT_SECRET = "oauth2-client-SECRET-0005"
OAUTH2_ARGS = [
    "--oauth2-token-url",
    "https://93.184.216.34/oauth/token",
    "--oauth2-client-id",
    "hub-client",
    "--oauth2-client-secret",
    CLIENT_SECRET,
]


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority()


def _pem_files(tmp_path, **texts: str) -> list[str]:
    """``--tls-<name>`` options naming files written with ``texts``."""
    args = []
    for name, pem in texts.items():
        path = tmp_path / f"{name}.pem"
        path.write_text(pem)
        args += [f"--tls-{name.replace('_', '-')}", str(path)]
    return args


def test_add_endpoint_with_oauth2_stores_it_and_prints_no_secret(tenant):
    extra = ["--oauth2-scope", "webhooks:write", "--oauth2-audience", "hub", "--oauth2-client-auth", "post"]

    lines = _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, *OAUTH2_ARGS, *extra)

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.auth_type, endpoint.auth) == (
        "oauth2",
        {
            "token_url": "https://93.184.216.34/oauth/token",
            "client_id": "hub-client",
            "client_secret": CLIENT_SECRET,
            "scope": "webhooks:write",
            "audience": "hub",
            "client_auth": "post",
        },
    )
    assert "Auth: OAuth2 client credentials at https://93.184.216.34/oauth/token as hub-client" in lines
    assert CLIENT_SECRET not in "\n".join(lines)
    assert lines[-1] == primary_secret(endpoint)


def test_add_endpoint_with_v1a_prints_the_public_key_and_never_the_private_one(tenant):
    lines = _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, "--signature-scheme", "v1a")

    endpoint = Endpoint.objects.get(tenant=tenant)
    [key] = public_keys(endpoint, now=timezone.now())
    assert endpoint.signature_scheme == "v1a"
    assert key.public_key in lines
    signing_key = EndpointSecret.objects.get(endpoint=endpoint, scheme="v1a").secret
    assert signing_key.removeprefix("whsk_") not in "\n".join(lines) and "whsk_" not in "\n".join(lines)


def test_add_endpoint_with_a_client_certificate_reads_the_files_and_prints_the_expiry_only(tenant, ca, tmp_path):
    pair = ca.issue("hub client")
    files = _pem_files(
        tmp_path, client_certificate=pair.certificate, client_key=pair.key, ca_certificate=ca.certificate
    )

    lines = _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, *files)

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.tls_client_certificate, endpoint.tls_client_key) == (pair.certificate, pair.key)
    assert endpoint.tls_ca_certificate == ca.certificate
    expires_at = endpoint.tls_client_certificate_expires_at
    assert f"TLS client certificate expires {expires_at:%Y-%m-%d %H:%M} UTC" in lines
    assert not [line for line in lines if line.startswith("Warning:")]
    assert pair.key.strip().splitlines()[1] not in "\n".join(lines)
    assert pair.key.strip().splitlines()[1] not in _raw_column(
        "subscriptions_endpoint", "tls_client_key", "id", endpoint.pk
    )


def test_add_endpoint_warns_about_a_certificate_expiring_in_5_days(tenant, ca, tmp_path):
    soon = ca.issue("hub client", not_after=timezone.now() + dt.timedelta(days=5, hours=1))

    lines = _run(
        "add_endpoint",
        "--tenant",
        tenant.slug,
        "--url",
        URL,
        *_pem_files(tmp_path, client_certificate=soon.certificate, client_key=soon.key),
    )

    [warning] = [line for line in lines if line.startswith("Warning:")]
    assert "The client certificate expires in 5 days" in warning


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--signature-scheme", "v2"], "--signature-scheme: Choose one of v1, v1a, both."),
        ([*OAUTH2_ARGS, "--oauth2-client-auth", "jwt"], "auth: client_auth is 'basic', 'post'."),
        (["--oauth2-token-url", "http://10.0.0.1/token", *OAUTH2_ARGS[2:]], "auth: The token_url is refused:"),
        (OAUTH2_ARGS[2:], "--oauth2-\\* options need --oauth2-token-url"),
        (["--bearer", "tok-1", *OAUTH2_ARGS[2:]], "--oauth2-\\* options need --oauth2-token-url"),
        (["--tls-client-key", "/nonexistent/key.pem"], "--tls-client-key: cannot read /nonexistent/key.pem"),
    ],
)
def test_add_endpoint_with_bad_gateway_options_is_refused(tenant, no_private_networks, args, message):
    with pytest.raises(CommandError, match=message) as refused:
        _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, *args)

    assert CLIENT_SECRET not in str(refused.value)
    assert not Endpoint.objects.exists()


def test_add_endpoint_with_a_key_that_is_not_the_certificates_names_the_option(tenant, ca, tmp_path):
    pair, stranger = ca.issue("hub client"), ca.issue("someone else")
    files = _pem_files(tmp_path, client_certificate=pair.certificate, client_key=stranger.key)

    with pytest.raises(CommandError) as refused:
        _run("add_endpoint", "--tenant", tenant.slug, "--url", URL, *files)

    assert str(refused.value) == "--tls-client-key: This key does not belong to the client certificate."
    assert not Endpoint.objects.exists()


def test_publish_prints_the_event_id_last(tenant):
    endpoint = make_endpoint(tenant, URL).endpoint

    lines = _run("publish", "--tenant", tenant.slug, "message.received", '{"text": "hi"}')

    event = Event.objects.get(tenant=tenant)
    assert lines[-1] == event.pk
    assert lines[0] == "Published message.received to 1 endpoint(s)"
    assert event.data == {"text": "hi"}
    assert list(event.deliveries.values_list("endpoint_id", flat=True)) == [endpoint.pk]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope", "message.received", "{}"], "No tenant with slug 'nope'"),
        (["message.received", "{not json"], "not valid JSON"),
        (["no.such_type", "{}"], "Unknown event type"),
        (["message.received", "[1, 2]"], "JSON object"),
    ],
)
def test_publish_with_bad_arguments_is_refused(tenant, args, message):
    if "--tenant" not in args:
        args = ["--tenant", tenant.slug, *args]

    with pytest.raises(CommandError, match=message):
        _run("publish", *args)

    assert not Event.objects.exists()


def test_system_checks_add_nothing_to_a_failing_command_stderr_in_the_local_setup(settings):
    """The derived-key warning (webhookhub.W001) is a deploy check, so errors stay one line."""
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ENCRYPTION_KEY_DERIVED": True}
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("publish", "--tenant", "nope", "message.received", "{}", skip_checks=False, stderr=err)

    assert err.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_command_error_is_one_line_on_stderr_and_exits_non_zero():
    env = {**os.environ, "DATABASE_URL": database_url()}

    result = subprocess.run(
        [sys.executable, "manage.py", "publish", "--tenant", "nope", "message.received", "{}"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("CommandError: No tenant with slug 'nope'")
    assert result.stdout == ""
    assert not Event.objects.exists()
