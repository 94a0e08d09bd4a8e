import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from deliveries.signing import sign, signature_header
from subscriptions.services import generate_secret

# The published Standard Webhooks test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = b'{"id":"evt_1","type":"message.received","data":{"text":"hi"}}'


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_standard_webhooks_test_vector():
    header = signature_header(secrets=[VECTOR_SECRET], msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY)

    assert header == VECTOR_SIGNATURE


def test_standardwebhooks_library_verifies_our_signature():
    secret, timestamp = generate_secret(), int(time.time())
    header = signature_header(secrets=[secret], msg_id="evt_1", timestamp=timestamp, body=BODY)

    assert Webhook(secret).verify(BODY, _headers("evt_1", timestamp, header)) == json.loads(BODY)


def test_standardwebhooks_library_rejects_a_changed_body():
    secret, timestamp = generate_secret(), int(time.time())
    header = signature_header(secrets=[secret], msg_id="evt_1", timestamp=timestamp, body=BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"hi", b"ho"), _headers("evt_1", timestamp, header))


def test_two_secrets_give_two_space_separated_signatures_primary_first():
    primary, previous = generate_secret(), generate_secret()

    header = signature_header(secrets=[primary, previous], msg_id="evt_1", timestamp=1700000000, body=BODY)

    assert header.split(" ") == [
        sign(secret=primary, msg_id="evt_1", timestamp=1700000000, body=BODY),
        sign(secret=previous, msg_id="evt_1", timestamp=1700000000, body=BODY),
    ]
    assert all(part.startswith("v1,") for part in header.split(" "))


def test_receiver_knowing_only_the_old_secret_still_verifies_after_rotation():
    primary, previous = generate_secret(), generate_secret()
    timestamp = int(time.time())
    header = signature_header(secrets=[primary, previous], msg_id="evt_1", timestamp=timestamp, body=BODY)

    Webhook(previous).verify(BODY, _headers("evt_1", timestamp, header))
    Webhook(primary).verify(BODY, _headers("evt_1", timestamp, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, _headers("evt_1", timestamp, header))
