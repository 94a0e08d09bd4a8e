"""Ed25519 (``v1a``) signatures, verified as a receiver would with an independent implementation (PyNaCl) holding
only the ``whpk_`` public key; v1 ones with the standardwebhooks library. Through the worker where the endpoint's
scheme and key rotation decide what is sent."""

import base64
import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from deliveries.models import Attempt, Delivery
from deliveries.signing import sign, signature_header
from ground.conf import setting
from subscriptions.keys import generate_secret, generate_signing_key, public_key
from subscriptions.models import Endpoint, EndpointSecret
from subscriptions.selectors import public_keys, signing_secrets
from subscriptions.services import MAX_PREVIOUS_SIGNING, rotate_signing_key, update_endpoint
from tests.factories import make_endpoint
from tests.support.receiver import Received
from tests.support.sending import drain_due
from webhookhub import publish

BODY = b'{"id":"evt_1","type":"message.received","data":{"text":"hi"}}'


def _verify_key(whpk: str) -> VerifyKey:
    """What a receiver makes of the public key it was given: base64 of the raw 32 bytes after ``whpk_``."""
    assert whpk.startswith("whpk_")
    raw = base64.b64decode(whpk.removeprefix("whpk_"), validate=True)
    assert len(raw) == 32
    return VerifyKey(raw)


def _v1a_signatures(header: str) -> list[bytes]:
    return [base64.b64decode(part.removeprefix("v1a,")) for part in header.split(" ") if part.startswith("v1a,")]


def _verifies(whpk: str, *, msg_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True when one of the header's v1a signatures is the public key's over "{id}.{timestamp}.{body}"."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for signature in _v1a_signatures(header):
        try:
            _verify_key(whpk).verify(signed, signature)
        except BadSignatureError:
            continue
        return True
    return False


def _received_verifies(whpk: str, request: Received) -> bool:
    headers = request.headers
    return _verifies(
        whpk,
        msg_id=headers["webhook-id"],
        timestamp=headers["webhook-timestamp"],
        body=request.body,
        header=headers["webhook-signature"],
    )


# --- signatures --------------------------------------------------------------------------------------------------


def test_a_v1a_signature_verifies_with_the_public_key_alone():
    key = generate_signing_key()
    timestamp = int(time.time())

    header = sign(secret=key, msg_id="evt_1", timestamp=timestamp, body=BODY)

    assert header.startswith("v1a,")
    assert len(_v1a_signatures(header)[0]) == 64
    assert _verifies(public_key(key), msg_id="evt_1", timestamp=str(timestamp), body=BODY, header=header)


def test_keys_are_written_as_standard_webhooks_writes_them():
    key = generate_signing_key()

    assert key.startswith("whsk_") and len(base64.b64decode(key.removeprefix("whsk_"))) == 32
    assert public_key(key).startswith("whpk_") and public_key(key) != "whpk_" + key.removeprefix("whsk_")


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [("evt_2", "1700000000", BODY), ("evt_1", "1700000001", BODY), ("evt_1", "1700000000", BODY.replace(b"hi", b"ho"))],
)
def test_the_signature_covers_the_id_the_timestamp_and_the_body(msg_id, timestamp, body):
    key = generate_signing_key()
    header = sign(secret=key, msg_id="evt_1", timestamp=1700000000, body=BODY)

    assert _verifies(public_key(key), msg_id="evt_1", timestamp="1700000000", body=BODY, header=header)
    assert not _verifies(public_key(key), msg_id=msg_id, timestamp=timestamp, body=body, header=header)


def test_another_key_does_not_verify():
    header = sign(secret=generate_signing_key(), msg_id="evt_1", timestamp=1700000000, body=BODY)

    assert not _verifies(
        public_key(generate_signing_key()), msg_id="evt_1", timestamp="1700000000", body=BODY, header=header
    )


def test_a_v1_secret_and_a_v1a_key_sign_side_by_side_each_verifiable():
    secret, key = generate_secret(), generate_signing_key()
    timestamp = int(time.time())

    header = signature_header(secrets=[secret, key], msg_id="evt_1", timestamp=timestamp, body=BODY)

    assert [part.split(",")[0] for part in header.split(" ")] == ["v1", "v1a"]
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(timestamp), "webhook-signature": header}
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert _verifies(public_key(key), msg_id="evt_1", timestamp=str(timestamp), body=BODY, header=header)


# --- what an endpoint sends --------------------------------------------------------------------------------------


def _send_one(endpoint: Endpoint, receiver, n: int = 1) -> Received:
    """Publish to the endpoint, drain through the worker; the request that arrived."""
    before = len(receiver.requests)
    publish(tenant=endpoint.tenant, type="message.received", data={"n": n}, endpoint_ids=[endpoint.pk])
    drain_due()
    [request] = receiver.requests[before:]
    return request


def _schemes(request: Received) -> list[str]:
    return [part.split(",")[0] for part in request.headers["webhook-signature"].split(" ")]


def _public_key(endpoint: Endpoint) -> str:
    [key] = public_keys(endpoint, now=timezone.now())
    return key.public_key


@pytest.mark.django_db(transaction=True)  # the worker records from its own connection
@pytest.mark.usefixtures("loopback_receivers")
def test_scheme_v1_sends_only_v1(tenant, receiver):
    created = make_endpoint(tenant, receiver.url(), signature_scheme="v1")

    request = _send_one(created.endpoint, receiver)

    assert _schemes(request) == ["v1"]
    assert Webhook(created.secret).verify(request.body, request.headers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_receivers")
def test_scheme_v1a_sends_only_v1a(tenant, receiver):
    created = make_endpoint(tenant, receiver.url(), signature_scheme="v1a")

    request = _send_one(created.endpoint, receiver)

    assert _schemes(request) == ["v1a"]
    assert _received_verifies(_public_key(created.endpoint), request)
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret).verify(request.body, request.headers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_receivers")
def test_scheme_both_sends_both(tenant, receiver):
    created = make_endpoint(tenant, receiver.url(), signature_scheme="both")

    request = _send_one(created.endpoint, receiver)

    assert _schemes(request) == ["v1", "v1a"]
    assert Webhook(created.secret).verify(request.body, request.headers)
    assert _received_verifies(_public_key(created.endpoint), request)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_receivers")
def test_the_public_key_taken_before_a_switch_to_v1a_verifies_after_it(tenant, receiver):
    created = make_endpoint(tenant, receiver.url())  # v1
    taken_early = _public_key(created.endpoint)
    assert _schemes(_send_one(created.endpoint, receiver)) == ["v1"]

    update_endpoint(endpoint=created.endpoint, signature_scheme="v1a")
    request = _send_one(created.endpoint, receiver, 2)

    assert _schemes(request) == ["v1a"]
    assert _received_verifies(taken_early, request)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_receivers")
def test_the_private_key_is_never_recorded(tenant, receiver):
    created = make_endpoint(tenant, receiver.url(), signature_scheme="both")

    request = _send_one(created.endpoint, receiver)

    [private] = EndpointSecret.objects.filter(endpoint=created.endpoint, scheme="v1a").values_list("secret", flat=True)
    [attempt] = Attempt.objects.filter(delivery__endpoint=created.endpoint)
    stored = json.dumps([attempt.request_headers, attempt.error, attempt.response_body])
    for text in (stored, json.dumps(request.headers), request.body.decode()):
        assert private not in text and private.removeprefix("whsk_") not in text


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_receivers")
def test_a_rotated_out_key_signs_until_its_grace_ends_then_stops(tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url(), signature_scheme="v1a").endpoint
    old = _public_key(endpoint)
    rotated_at = timezone.now()

    new = rotate_signing_key(endpoint=endpoint, now=rotated_at)

    grace_end = rotated_at + timedelta(seconds=setting("SECRET_ROTATION_GRACE_SECONDS"))
    assert new != old and new.startswith("whpk_")
    listed = public_keys(Endpoint.objects.get(pk=endpoint.pk), now=timezone.now())
    assert [(key.public_key, key.expires_at) for key in listed] == [(new, None), (old, grace_end)]
    during = _send_one(Endpoint.objects.get(pk=endpoint.pk), receiver)
    assert _schemes(during) == ["v1a", "v1a"]
    assert _received_verifies(old, during) and _received_verifies(new, during)
    primary, _ = _v1a_signatures(during.headers["webhook-signature"])
    signed = f"{during.headers['webhook-id']}.{during.headers['webhook-timestamp']}.".encode() + during.body
    _verify_key(new).verify(signed, primary)  # the new key's signature comes first

    with time_machine.travel(grace_end + timedelta(seconds=1), tick=True):
        after = _send_one(Endpoint.objects.get(pk=endpoint.pk), receiver, 2)
        listed_after = public_keys(Endpoint.objects.get(pk=endpoint.pk), now=timezone.now())

    assert _schemes(after) == ["v1a"]
    assert _received_verifies(new, after)
    assert not _received_verifies(old, after)
    assert [key.public_key for key in listed_after] == [new]
    assert Delivery.objects.filter(endpoint=endpoint).count() == 2


@pytest.mark.django_db
def test_rotations_in_a_row_leave_only_the_newest_few_previous_keys_signing(tenant):
    endpoint = make_endpoint(tenant, "https://93.184.216.34/hook", signature_scheme="v1a").endpoint
    first = _public_key(endpoint)
    rotated = [rotate_signing_key(endpoint=endpoint) for _ in range(MAX_PREVIOUS_SIGNING + 2)]

    listed = [key.public_key for key in public_keys(Endpoint.objects.get(pk=endpoint.pk), now=timezone.now())]
    assert listed == [*reversed(rotated)][: MAX_PREVIOUS_SIGNING + 1]  # the primary and the newest previous ones
    assert first not in listed
    signing = signing_secrets([Endpoint.objects.get(pk=endpoint.pk)], now=timezone.now())[endpoint.pk]
    assert len(signing) == MAX_PREVIOUS_SIGNING + 1
