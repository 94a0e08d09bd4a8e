"""Encryption at rest for secrets (MultiFernet, keys from WEBHOOKHUB_ENCRYPTION_KEY) and masking."""

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from ground.conf import setting


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("WEBHOOKHUB_ENCRYPTION_KEY is not set.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "WEBHOOKHUB_ENCRYPTION_KEY must be a comma list of Fernet keys (32 url-safe base64-encoded bytes)."
        ) from exc


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(setting("ENCRYPTION_KEYS"))).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(setting("ENCRYPTION_KEYS"))).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("A stored secret cannot be decrypted with WEBHOOKHUB_ENCRYPTION_KEY.") from exc


def mask(value: str | None) -> str:
    """What admins see after creation: never more than the last four characters."""
    if not value:
        return ""
    if len(value) < 12:
        return "****"
    return f"****{value[-4:]}"


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token; Python code sees the plain value."""

    _pyi_private_set_type: Any  # for django-stubs: Python code sets and gets JSON values, not text
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        return ""  # never serialise secrets (dumpdata, admin history)
