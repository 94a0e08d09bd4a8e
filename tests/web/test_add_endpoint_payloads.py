"""``manage.py add_endpoint``'s payload options: --payload-format, --payload-shape, --verification; a Heymarket
endpoint's verification token printed once; bad values refused naming the option."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from subscriptions.models import Endpoint, EndpointSecret, PayloadFormat, Verification
from subscriptions.payloads import heymarket_webhook_id
from tests.factories import URL

pytestmark = pytest.mark.django_db

SHAPE = "{event: type, payload: data}"


def _run(tenant, *args: str) -> list[str]:
    out = StringIO()
    call_command("add_endpoint", "--tenant", tenant.slug, "--url", URL, *args, stdout=out)
    return out.getvalue().splitlines()


def test_a_heymarket_endpoint_prints_its_token_once_and_the_secret_still_last(tenant):
    lines = _run(tenant, "--payload-format", "heymarket")

    endpoint = Endpoint.objects.get(tenant=tenant)
    token = endpoint.verification_token
    assert (endpoint.payload_format, endpoint.verification) == (PayloadFormat.HEYMARKET, Verification.BOTH)
    assert token and lines.count(token) == 1
    assert "\n".join(lines).count(token) == 1
    assert lines[lines.index(token) - 1].startswith("Verification token (shown once")
    assert f"Heymarket webhook id: {heymarket_webhook_id(endpoint.pk)}" in lines
    assert lines[-1] == EndpointSecret.objects.get(endpoint=endpoint, scheme="v1").secret
    assert endpoint.pk in lines


def test_the_verification_of_a_heymarket_endpoint_can_be_chosen(tenant):
    lines = _run(tenant, "--payload-format", "heymarket", "--verification", "token")

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert endpoint.verification == Verification.TOKEN
    assert endpoint.verification_token in lines


def test_a_custom_endpoint_takes_its_shape(tenant):
    lines = _run(tenant, "--payload-format", "custom", "--payload-shape", SHAPE)

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.payload_format, endpoint.payload_shape) == (PayloadFormat.CUSTOM, SHAPE)
    assert endpoint.verification_token is None
    assert not any("Verification token" in line for line in lines)
    assert "Payload format: custom; verification: signature" in lines


def test_without_the_options_the_endpoint_is_standard_and_no_token_is_printed(tenant):
    lines = _run(tenant)

    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.payload_format, endpoint.payload_shape, endpoint.verification) == ("standard", "", "signature")
    assert endpoint.verification_token is None
    assert not any("token" in line.lower() for line in lines)
    assert lines[-1].startswith("whsec_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload-format", "xml"], "--payload-format takes one of standard, heymarket"),
        (["--verification", "sometimes"], "--verification takes one of signature, token, both"),
        (["--payload-format", "custom"], "--payload-shape: A custom payload format needs a JMESPath expression"),
        (["--payload-format", "custom", "--payload-shape", "{event: type"], "--payload-shape: Not a JMESPath"),
        (["--payload-format", "custom", "--payload-shape", "type"], "--payload-shape: For the example of"),
        (["--payload-shape", SHAPE], "--payload-shape: Only a custom payload format takes a shape"),
        (["--verification", "token"], "--verification: Only the Heymarket format carries a verification token"),
    ],
    ids=["format", "verification value", "no shape", "unparsable", "not an object", "shape of standard", "token"],
)
def test_bad_payload_options_are_refused_naming_the_option(tenant, args, message):
    with pytest.raises(CommandError) as refused:
        _run(tenant, *args)

    assert str(refused.value).startswith(message)
    assert not Endpoint.objects.exists()


def test_the_help_lists_the_payload_options(capsys):
    with pytest.raises(SystemExit):
        call_command("add_endpoint", "--help")

    shown = capsys.readouterr().out
    assert "--payload-format" in shown and "--payload-shape" in shown and "--verification" in shown
