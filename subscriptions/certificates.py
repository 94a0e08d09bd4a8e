"""Mutual TLS material of an endpoint: checked at save, made into the SSL context its requests use.

The client certificate (PEM, the leaf first, then any intermediates) and its private key are presented to
an https:// endpoint; ``tls_ca_certificate``, when given, is the only CA its server certificate is verified
against. The server certificate is verified whatever is set.
"""

import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from django.core.exceptions import ValidationError

MAX_PEM_CHARS = 64 * 1024
EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class ClientTls:
    """What an endpoint's requests present and trust (PEM text); hashable, so contexts and pools are shared."""

    certificate: str = ""
    key: str = field(default="", repr=False)
    ca_certificate: str = ""


def client_tls_of(endpoint: Any) -> ClientTls | None:
    """The endpoint's mutual TLS settings, or None when it has none (the deployment's default context)."""
    if not endpoint.tls_client_certificate and not endpoint.tls_ca_certificate:
        return None
    return ClientTls(endpoint.tls_client_certificate, endpoint.tls_client_key or "", endpoint.tls_ca_certificate)


@lru_cache(maxsize=256)
def ssl_context(tls: ClientTls) -> ssl.SSLContext:
    """A verifying client context presenting the certificate and trusting the CA (else the system's CAs)."""
    context = ssl.create_default_context(cadata=tls.ca_certificate or None)
    context.hostname_checks_common_name = False  # the name must be a subjectAltName, as in urllib3's own context
    if tls.certificate:
        with _private_file(tls.certificate) as certfile, _private_file(tls.key) as keyfile:
            context.load_cert_chain(certfile, keyfile)
    return context


@contextmanager
def _private_file(text: str) -> Iterator[str]:
    """A path holding ``text`` for OpenSSL to read (it loads keys only from files): an anonymous in-memory file
    where the system has them, else a file only this user can read, removed at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("webhookhub-tls", 0)
        try:
            os.write(fd, text.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp()
    try:
        os.write(fd, text.encode())
        os.close(fd)
        yield path
    finally:
        os.unlink(path)


@dataclass(frozen=True)
class CheckedTls:
    certificate: str
    key: str | None = field(repr=False)
    ca_certificate: str
    expires_at: datetime | None


def check_tls(
    *, url: str, certificate: Any, key: Any, ca_certificate: Any, now: datetime, stored_certificate: str = ""
) -> CheckedTls:
    """The endpoint's TLS settings together (ValidationError naming the field): PEM that parses; a key that is
    unencrypted and matches the certificate; a certificate valid now, unless it is the ``stored_certificate``
    (one that lapsed does not stop edits of the rest of the endpoint: its expiry is shown and warned about);
    an https:// URL; and a pair and CA that OpenSSL loads."""
    certificate = _text("tls_client_certificate", certificate)
    key = _text("tls_client_key", key)
    ca_certificate = _text("tls_ca_certificate", ca_certificate)
    if (certificate or ca_certificate) and not url.lower().startswith("https://"):
        blamed = "tls_client_certificate" if certificate else "tls_ca_certificate"
        raise ValidationError({blamed: "Mutual TLS and a private CA need an https:// URL."})
    if key and not certificate:
        raise ValidationError({"tls_client_certificate": "Give the client certificate that goes with the key."})
    if certificate and not key:
        raise ValidationError({"tls_client_key": "Give the private key of the client certificate (PEM)."})
    expires_at = None
    if certificate:
        leaf = _certificates("tls_client_certificate", certificate)[0]
        _check_pair(leaf, key)
        if certificate != stored_certificate:
            _check_dates(leaf, now)
        expires_at = leaf.not_valid_after_utc
    if ca_certificate:
        _certificates("tls_ca_certificate", ca_certificate)
    if certificate or ca_certificate:
        try:
            ssl_context(ClientTls(certificate, key, ca_certificate))
        except ssl.SSLError as exc:
            blamed = "tls_client_certificate" if certificate else "tls_ca_certificate"
            raise ValidationError({blamed: f"OpenSSL cannot use it: {exc.reason or exc}."}) from exc
    return CheckedTls(certificate, key or None, ca_certificate, expires_at)


def _text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({field: "Give PEM text."})
    if len(value) > MAX_PEM_CHARS:
        raise ValidationError({field: f"Longer than {MAX_PEM_CHARS:,} characters."})
    if not value.isascii():
        raise ValidationError({field: "PEM is ASCII text: remove the other characters."})
    if field != "tls_client_key" and "PRIVATE KEY-----" in value:  # certificates are shown again; keys never
        raise ValidationError(
            {field: "This holds a private key: put only certificates here (the key goes in tls_client_key)."}
        )
    return value.strip() + "\n" if value.strip() else ""


def _certificates(field: str, pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ValidationError({field: "Not a PEM certificate (-----BEGIN CERTIFICATE----- ...)."}) from exc


def _check_dates(leaf: x509.Certificate, now: datetime) -> None:
    if leaf.not_valid_after_utc <= now:
        raise ValidationError(
            {"tls_client_certificate": f"The certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."}
        )
    if leaf.not_valid_before_utc > now:
        raise ValidationError(
            {
                "tls_client_certificate": "The certificate is not valid before "
                f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC."
            }
        )


def _check_pair(leaf: x509.Certificate, key_pem: str) -> None:
    try:
        key = load_pem_private_key(key_pem.encode(), password=None)
    except TypeError as exc:
        raise ValidationError(
            {"tls_client_key": "The key is protected by a password: give it unencrypted (it is stored encrypted)."}
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError({"tls_client_key": "Not a PEM private key (-----BEGIN PRIVATE KEY----- ...)."}) from exc
    try:
        certified = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError({"tls_client_certificate": "Its public key is of a kind that cannot be used."}) from exc
    if _spki(key.public_key()) != _spki(certified):
        raise ValidationError({"tls_client_key": "This key does not belong to the client certificate."})


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def expiry_warning(expires_at: datetime | None, *, now: datetime) -> str | None:
    """What admins are told about a client certificate that expires within EXPIRY_WARNING_DAYS (else None)."""
    if expires_at is None or expires_at - now > timedelta(days=EXPIRY_WARNING_DAYS):
        return None
    if expires_at <= now:
        return f"The client certificate expired on {expires_at:%Y-%m-%d %H:%M} UTC: the receiver will refuse it."
    left = expires_at - now
    days = left.days
    when = f"in {days} day{'s' if days != 1 else ''}" if days else f"in {max(1, left.seconds // 3600)} h"
    return f"The client certificate expires {when} ({expires_at:%Y-%m-%d %H:%M} UTC): upload its renewal."
