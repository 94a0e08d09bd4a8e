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

from accounts.models import ApiKey, Tenant
from accounts.services import authenticate_api_key
from events.models import Event
from subscriptions.models import Endpoint, EndpointSecret
from tests.factories import URL, TenantFactory, make_endpoint
from tests.support.processes import database_url

pytestmark = pytest.mark.django_db


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
    assert EndpointSecret.objects.get(endpoint=endpoint).secret == secret
    raw_secret = _raw_column("subscriptions_endpointsecret", "secret", "endpoint_id", endpoint.pk)
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
