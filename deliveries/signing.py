"""Standard Webhooks signatures of "{id}.{timestamp}.{body}": ``v1,`` base64 HMAC-SHA256 under a shared secret,
``v1a,`` base64 Ed25519 under a private key (receivers verify it with the public key alone)."""

import base64
import hashlib
import hmac

from subscriptions.keys import private_key
from subscriptions.models import SECRET_PREFIX, SIGNING_KEY_PREFIX


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, in the scheme of ``secret`` (``whsec_``: v1, ``whsk_``: v1a)."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    if secret.startswith(SIGNING_KEY_PREFIX):
        return "v1a," + base64.b64encode(private_key(secret).sign(signed)).decode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per live secret or key, primary first."""
    return " ".join(sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets)
