"""Builds the exact request of one attempt: headers (system headers win) and the stored body."""

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from deliveries.signing import signature_header
from ground.crypto import mask
from subscriptions.models import AuthType, Endpoint

# Printable ASCII but "%": what a header carries of an ordering key as it is (the rest is percent-encoded).
_KEY_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    headers: dict[str, str]
    masked_headers: dict[str, str]  # what the Attempt log keeps
    body: bytes


def _auth_headers(endpoint: Endpoint, access_token: str | None) -> dict[str, str]:
    auth: dict[str, Any] = endpoint.auth or {}
    if endpoint.auth_type == AuthType.OAUTH2:
        return {"Authorization": f"Bearer {access_token}"} if access_token else {}
    if endpoint.auth_type == AuthType.BEARER:
        return {"Authorization": f"Bearer {auth['token']}"}
    if endpoint.auth_type == AuthType.API_KEY:
        return {auth["header"]: auth["value"]}
    if endpoint.auth_type == AuthType.BASIC:
        credentials = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        return {"Authorization": f"Basic {credentials}"}
    return {}


def _mask_credential(value: str) -> str:
    """ "Bearer abc...xyz" -> "Bearer ****" + at most the last 4 of the credential itself."""
    scheme, sep, credential = value.partition(" ")
    if sep and scheme in ("Bearer", "Basic"):
        return f"{scheme} {mask(credential)}"
    return mask(value)


def _merge(*layers: dict[str, str]) -> dict[str, str]:
    """Later layers win, whatever the case of the header name."""
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, value)
    return dict(merged.values())


def build_request(
    *,
    endpoint: Endpoint,
    event_id: str,
    body: str,
    secrets: list[str],
    timestamp: int,
    user_agent: str,
    ordering: tuple[str, int] | None = None,
    access_token: str | None = None,
) -> OutboundRequest:
    """``secrets``: those that sign, primary first (none: no ``webhook-signature``). ``ordering``: a keyed
    delivery's (ordering key, sequence), sent as ``webhook-ordering-key`` (percent-encoded UTF-8 where the key
    holds a ``%`` or a character outside printable ASCII) and ``webhook-sequence``. ``access_token``: an OAuth2
    endpoint's current token (``deliveries.oauth2``)."""
    payload = body.encode()
    system = {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
    }
    if secrets:
        system["webhook-signature"] = signature_header(
            secrets=secrets, msg_id=event_id, timestamp=timestamp, body=payload
        )
    if ordering is not None:
        key, sequence = ordering
        system |= {"webhook-ordering-key": quote(key, safe=_KEY_SAFE), "webhook-sequence": str(sequence)}
    custom = endpoint.custom_headers or {}
    auth = _auth_headers(endpoint, access_token)
    headers = _merge(custom, auth, system)
    masked = _merge(
        {name: mask(value) for name, value in custom.items()},
        {name: _mask_credential(value) for name, value in auth.items()},
        system,
    )
    return OutboundRequest(url=endpoint.url, headers=headers, masked_headers=masked, body=payload)
