"""Standard Webhooks signatures: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under each secret."""

import base64
import hashlib
import hmac

from subscriptions.models import SECRET_PREFIX


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` per live secret, primary first."""
    return " ".join(sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets)
