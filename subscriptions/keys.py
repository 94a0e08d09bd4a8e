"""Signing material of an endpoint: v1 shared secrets (``whsec_``) and v1a Ed25519 key pairs (``whsk_``/``whpk_``).

Written as Standard Webhooks writes them: the prefix, then base64 of the raw bytes (32 for an Ed25519 key).
"""

import base64
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from subscriptions.models import PUBLIC_KEY_PREFIX, SECRET_PREFIX, SIGNING_KEY_PREFIX, SignatureScheme

V1 = "v1"
V1A = "v1a"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def generate_signing_key() -> str:
    """A new Ed25519 private key, ``whsk_`` + base64 of its 32 raw bytes."""
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    return SIGNING_KEY_PREFIX + base64.b64encode(raw).decode()


@lru_cache(maxsize=4096)
def private_key(signing_key: str) -> Ed25519PrivateKey:
    """The key object of a ``whsk_`` key (cached: senders sign with the same few keys all day)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_key.removeprefix(SIGNING_KEY_PREFIX)))


def public_key(signing_key: str) -> str:
    """What receivers verify ``v1a`` signatures with: ``whpk_`` + base64 of the raw 32-byte public key."""
    raw = private_key(signing_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def scheme_of(secret: str) -> str:
    """``v1a`` for an Ed25519 key, ``v1`` for a shared secret."""
    return V1A if secret.startswith(SIGNING_KEY_PREFIX) else V1


def schemes_signing(signature_scheme: str) -> tuple[str, ...]:
    """The schemes an endpoint's ``signature_scheme`` signs with."""
    if signature_scheme == SignatureScheme.BOTH:
        return (V1, V1A)
    return (V1A,) if signature_scheme == SignatureScheme.V1A else (V1,)
