"""OAuth2 client credentials (RFC 6749 4.4) for endpoints whose receivers want a short-lived Bearer token.

The sending worker fetches the token from the endpoint's token URL, through ``deliveries.http`` (the address
policy, timeouts, no redirects), and keeps it per endpoint until shortly before it expires: one cache per
process, shared by the sender threads, one fetch at a time per endpoint. Authlib builds the grant and the
client authentication (``client_secret_basic`` or ``client_secret_post``).

Errors say what the token endpoint answered and never carry the client secret.
"""

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_token_request  # type: ignore[import-untyped]

from deliveries import http
from subscriptions.models import Endpoint, OAuth2ClientAuth

DEFAULT_LIFETIME_SECONDS = 300.0  # a token answered without expires_in
EARLY_RENEWAL_MAX_SECONDS = 30.0  # renewed this long before it expires, or a tenth of its life if less
FAILURE_HOLD_SECONDS = 5.0  # a failed fetch is the answer for this long: no stampede on a broken token endpoint
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 8192
_MAX_CACHED_ENDPOINTS = 10_000


class TokenError(Exception):
    """No token: the message says why (no secret in it)."""


@dataclass(frozen=True)
class Client:
    """An endpoint's ``auth`` of type oauth2."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = ""
    audience: str = ""
    client_auth: str = OAuth2ClientAuth.BASIC

    @classmethod
    def of(cls, endpoint: Endpoint) -> "Client":
        auth: dict[str, Any] = endpoint.auth or {}
        return cls(**{name: auth[name] for name in cls.__dataclass_fields__ if auth.get(name) is not None})


Fetch = Callable[[Client, float], tuple[str, float]]


def fetch_token(client: Client, timeout: float) -> tuple[str, float]:
    """(access token, lifetime in seconds) from the token endpoint, or TokenError."""
    body = prepare_token_request("client_credentials", scope=client.scope or None, audience=client.audience or None)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    _, headers, body = _client_auth(client).prepare("POST", client.token_url, headers, body)
    result = http.post(
        client.token_url,
        headers=headers,
        body=body.encode(),
        connect_timeout=min(5.0, timeout),
        total_timeout=timeout,
        max_response_bytes=MAX_TOKEN_RESPONSE_BYTES,
    )
    host = urlsplit(client.token_url).hostname
    if result.status_code is None:
        raise TokenError(_redacted(f"Token request to {host} failed: {result.error}", client))
    answer = _json(result.body)
    if not 200 <= result.status_code < 300:
        said = ""
        if isinstance(answer.get("error"), str):  # redacted whole, then cut (a cut could split a secret)
            said = f" {_redacted(answer['error'], client)[:100]}"
            if isinstance(answer.get("error_description"), str):
                said += f" ({_redacted(answer['error_description'], client)[:200]})"
        raise TokenError(f"Token endpoint {host} answered {result.status_code}{said}.")
    return _token_of(answer, host)


def _client_auth(client: Client) -> ClientAuth:
    """How the client authenticates. In HTTP Basic the id and secret are form-encoded first (RFC 6749 2.3.1: a
    secret with "+" or "%" reaches a decoding server intact); Authlib puts them in as they are."""
    if client.client_auth == OAuth2ClientAuth.BASIC:
        return ClientAuth(quote_plus(client.client_id), quote_plus(client.client_secret), "client_secret_basic")
    return ClientAuth(client.client_id, client.client_secret, "client_secret_post")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _token_of(answer: dict[str, Any], host: str | None) -> tuple[str, float]:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(f"Token endpoint {host} answered without an access_token.")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise TokenError(f"Token endpoint {host} answered an access_token that cannot go in a header.")
    token_type = answer.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        said = str(token_type)[:40]
        raise TokenError(f"Token endpoint {host} answered a token of type {said!r}; only Bearer is sent.")
    lifetime = answer.get("expires_in", DEFAULT_LIFETIME_SECONDS)
    try:
        lifetime = float(lifetime)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    if not math.isfinite(lifetime) or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME_SECONDS
    return token, lifetime


def _redacted(text: str, client: Client) -> str:
    """``text`` without the client secret, as given, form-encoded or in the Basic credentials (a token server
    may echo any of them)."""
    secret = client.client_secret
    basic = base64.b64encode(f"{quote_plus(client.client_id)}:{quote_plus(secret)}".encode()).decode()
    for shown in sorted({secret, quote_plus(secret), basic} - {""}, key=len, reverse=True):
        text = text.replace(shown, "****")
    return text


def usable_for(lifetime: float) -> float:
    """How long a token is used: until shortly before it expires."""
    return lifetime - min(EARLY_RENEWAL_MAX_SECONDS, lifetime / 10)


@dataclass
class _Entry:
    client: Client
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: str = field(default="", repr=False)
    valid_until: float = 0.0
    failure: str = ""
    failed_until: float = 0.0
    refreshes_held_until: float = 0.0  # the receiver refused a fresh token: 401s fetch no other until then


class Tokens:
    """Tokens per endpoint, for the threads of one process."""

    def __init__(self, fetch: Fetch = fetch_token, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, Client], _Entry] = {}  # by endpoint and settings (old and new may overlap)
        self.fetches = 0  # how many token requests this process made

    def token(self, endpoint: Endpoint, *, timeout: float) -> str:
        """The endpoint's current token: the cached one, or one fetched now (TokenError if that fails)."""
        entry = self._entry(endpoint)
        if entry.token and self._clock() < entry.valid_until:
            return entry.token
        with entry.lock:  # one fetch at a time; those who waited take its token
            return self._current(entry, timeout)

    def refresh(self, endpoint: Endpoint, *, rejected: str, timeout: float) -> str:
        """A token other than ``rejected`` (the receiver answered 401 to it): fetched now unless another thread
        already did."""
        entry = self._entry(endpoint)
        with entry.lock:
            if entry.token == rejected:
                if self._clock() < entry.refreshes_held_until:
                    raise TokenError(
                        "The receiver refused a fresh token too, moments ago: no other is fetched for a 401 "
                        f"within {FAILURE_HOLD_SECONDS:g} s of that (is the receiver checking the right audience?)."
                    )
                entry.token, entry.valid_until = "", 0.0
            return self._current(entry, timeout)

    def refused_fresh(self, endpoint: Endpoint) -> None:
        """The receiver answered 401 to a token fetched for its 401: a receiver refusing every token must not
        make each delivery fetch one."""
        entry = self._entry(endpoint)
        with entry.lock:
            entry.refreshes_held_until = self._clock() + FAILURE_HOLD_SECONDS

    def _current(self, entry: _Entry, timeout: float) -> str:
        now = self._clock()
        if entry.token and now < entry.valid_until:
            return entry.token
        if entry.failure and now < entry.failed_until:
            raise TokenError(entry.failure)
        self.fetches += 1
        try:
            token, lifetime = self._fetch(entry.client, timeout)
        except TokenError as exc:
            entry.token, entry.failure, entry.failed_until = "", str(exc), self._clock() + FAILURE_HOLD_SECONDS
            raise
        entry.token, entry.valid_until, entry.failure = token, now + usable_for(lifetime), ""
        return token

    def _entry(self, endpoint: Endpoint) -> _Entry:
        """The endpoint's entry for its settings as read: changed settings take a token of their own, and sends
        still holding the old settings keep theirs, without the two replacing each other."""
        key = (endpoint.pk, Client.of(endpoint))
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= _MAX_CACHED_ENDPOINTS:
                    self._entries.clear()
                entry = self._entries[key] = _Entry(key[1])
            return entry


tokens = Tokens()
