"""The body an endpoint receives: the standard envelope, a preset, or a custom JMESPath shape.

The presets reproduce the payloads documented by the platforms a product may move from, so their
receivers keep working unchanged:

- ``heymarket``: ``{"id": <webhook id>, "token": "<verification token>", "type": "message_recieved",
  "event_data": {...}}``, with Heymarket's snake_case type names (``message_recieved`` keeps its
  historic spelling); ``token`` only when the endpoint's verification includes it;
- ``heyy``: ``{"id", "tenantId", "event": "message.received", "data": {...}}``;
- ``customertext``: ``{"event": "new_contact", "timestamp", "data": {...}}``.

A custom shape is a JMESPath expression (an expression language with no code execution) over the
standard envelope ``{id, type, timestamp, tenant_id, data}`` that must give a JSON object.

Endpoints with equal ``Shape``s receive the same bytes for an event, so publishing renders and stores
one body per distinct shape. The Heymarket token is the endpoint's credential: a body holds
``TOKEN_SLOT`` in its place, filled in when the request is built (``fill_token``), so no token is kept
outside the endpoint's encrypted field.
"""

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from events.catalog import CATALOG
from events.envelope import plainly_storable, unstorable_text
from ground.conf import setting
from ground.crypto import mask
from subscriptions.models import ALL_EVENT_TYPES, Endpoint, PayloadFormat, Verification

MAX_SHAPE_CHARS = 2000

# Where a Heymarket body's token goes: the JSON text of a string holding only NUL, which event data can
# never produce (publishing refuses NUL characters, and a shape's result is checked the same way).
TOKEN_SLOT = '"\\u0000"'  # noqa: S105 - a placeholder, not a secret

HEYMARKET_TYPES = {
    "message.received": "message_recieved",  # sic: Heymarket's spelling
    "message.sent": "message_sent",
    "chat.closed": "chat_closed",
    "chat.opened": "chat_opened",
    "chat.pending": "chat_pending",
    "chat.reassigned": "chat_reassigned",
    "chat.transferred": "chat_transferred",
    "contact.opted_out": "target_opt_out",
    "contact.opted_in": "target_opt_in",
    "contact.double_opt_in": "target_double_opt_in",
    "contact.double_opt_restricted": "target_double_opt_restricted",
    "call.incoming": "incoming_call",
}
# CustomerText documents ``new_contact``; the names of its other events follow it.
CUSTOMERTEXT_TYPES = {
    "contact.created": "new_contact",
    "contact.updated": "contact_updated",
    "contact.opted_out": "contact_opt_out",
    "message.received": "inbound_message",
    "keyword.opted_in": "keyword_opt_in",
    "campaign.sent": "campaign_sent",
}


def receivable_types(payload_format: str, event_types: list[str]) -> list[str]:
    """The types an endpoint receives: its own, but every type (``*``) on a Heymarket endpoint means Heymarket's
    (its receivers know no others)."""
    if payload_format == PayloadFormat.HEYMARKET and ALL_EVENT_TYPES in event_types:
        return list(HEYMARKET_TYPES)
    return event_types


def snake_type(event_type: str, names: dict[str, str]) -> str:
    """A preset's name for a type: its documented one, else the dotted name with underscores."""
    return names.get(event_type) or event_type.replace(".", "_")


class ShapeError(ValueError):
    """A body could not be made: the shape gave no JSON object, or one too large to send."""


@dataclass(frozen=True)
class Shape:
    """One body recipe; ``None`` stands for the standard envelope (the event's own body)."""

    format: str
    expression: str = ""  # custom
    webhook_id: int = 0  # heymarket: the "id" of the body
    token: bool = False  # heymarket: a "token" member (``TOKEN_SLOT``)

    def render(self, envelope: dict[str, Any]) -> str:
        """The body for this envelope (``{id, type, timestamp, tenant_id, data}``); raises ShapeError."""
        if self.format == PayloadFormat.HEYMARKET:
            body: Any = {"id": self.webhook_id}
            if self.token:
                body["token"] = "\x00"  # noqa: S105 - serialised as TOKEN_SLOT
            body |= {"type": snake_type(envelope["type"], HEYMARKET_TYPES), "event_data": envelope["data"]}
        elif self.format == PayloadFormat.HEYY:
            body = {"id": envelope["id"], "tenantId": envelope["tenant_id"], "event": envelope["type"]}
            body["data"] = envelope["data"]
        elif self.format == PayloadFormat.CUSTOMERTEXT:
            body = {"event": snake_type(envelope["type"], CUSTOMERTEXT_TYPES), "timestamp": _whole_seconds(envelope)}
            body["data"] = envelope["data"]
        else:
            body = _search(self.expression, envelope)
            if not isinstance(body, dict):
                raise ShapeError(f"The payload shape gave {_kind(body)}, not a JSON object.")
            text = _serialised(body)
            if not plainly_storable(text) and (problem := unstorable_text(body)):  # json.dumps took its depth
                raise ShapeError(f"The payload shape's result {problem}.")
            return text
        return _serialised(body)


_JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "an array"}


def _whole_seconds(envelope: dict[str, Any]) -> str:
    """The envelope's timestamp as CustomerText writes it: ``2026-04-25T14:30:00Z``, no fraction."""
    timestamp: str = envelope["timestamp"]
    return timestamp.split(".")[0].removesuffix("Z") + "Z"


def _kind(value: Any) -> str:
    """What a JMESPath result is, in JSON's words."""
    return "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)


def _serialised(body: dict[str, Any]) -> str:
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError as error:
        raise ShapeError("The payload shape gave a body nested too deeply.") from error
    except ValueError as error:  # infinity or NaN (e.g. to_number('1e999'))
        raise ShapeError(f"The payload shape gave a value JSON cannot carry: {error}") from error
    limit = setting("MAX_PAYLOAD_BYTES")
    size = len(text.encode())
    if size > limit:
        raise ShapeError(f"The payload shape gave a body of {size} bytes; the limit is {limit} bytes.")
    return text


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return jmespath.compile(expression)


def _search(expression: str, envelope: dict[str, Any]) -> Any:
    try:
        return _compiled(expression).search(envelope)
    except RecursionError as error:
        raise ShapeError("The payload shape is nested too deeply.") from error
    # A function given the wrong type by this event's data (JMESPathError is a ValueError), or a number it
    # cannot take: ceil(`1e999`) raises OverflowError, floor of NaN ValueError.
    except (ValueError, TypeError, ArithmeticError) as error:
        raise ShapeError(f"The payload shape failed on this event: {error}") from error


def heymarket_webhook_id(endpoint_id: str) -> int:
    """The number a Heymarket body carries as its webhook configuration ``id``: stable per endpoint, below 2**48
    (exact in JavaScript)."""
    return int.from_bytes(hashlib.sha256(endpoint_id.encode()).digest()[:6], "big")


def shape_of(endpoint_id: str, payload_format: str, payload_shape: str, verification: str) -> Shape | None:
    """The endpoint's body recipe; None for the standard envelope."""
    if payload_format == PayloadFormat.STANDARD:
        return None
    if payload_format == PayloadFormat.CUSTOM:
        return Shape(PayloadFormat.CUSTOM, expression=payload_shape)
    if payload_format == PayloadFormat.HEYMARKET:
        token = verification in (Verification.TOKEN, Verification.BOTH)
        return Shape(PayloadFormat.HEYMARKET, webhook_id=heymarket_webhook_id(endpoint_id), token=token)
    return Shape(payload_format)


def fill_token(body: str, token: str | None) -> str:
    """The body as sent: a Heymarket token slot filled with the endpoint's token."""
    if TOKEN_SLOT not in body:
        return body
    return body.replace(TOKEN_SLOT, json.dumps(token or "", ensure_ascii=False), 1)


def masked_token(endpoint: Endpoint) -> str:
    """What pages, the API and previews show of a Heymarket verification token: at most its last four."""
    return mask(endpoint.verification_token) if endpoint.verification_token else "****"


def signs(verification: str) -> bool:
    """Whether requests carry the Standard Webhooks signature headers."""
    return verification != Verification.TOKEN


# --- validation at save -------------------------------------------------------------------------------


def shape_problem(payload_format: str, payload_shape: str, event_types: list[str]) -> str | None:
    """Why a custom shape cannot be saved (for the ``payload_shape`` field), or None: it must compile, stay
    under ``MAX_SHAPE_CHARS``, and give a JSON object within the size limit for the example of every type
    the endpoint subscribes to."""
    if payload_format != PayloadFormat.CUSTOM:
        return "Only a custom payload format takes a shape; leave it empty." if payload_shape else None
    if not isinstance(payload_shape, str) or not payload_shape.strip():
        return "A custom payload format needs a JMESPath expression, e.g. {event: type, payload: data}."
    if len(payload_shape) > MAX_SHAPE_CHARS:
        return f"The shape is longer than {MAX_SHAPE_CHARS} characters."
    try:
        _compiled(payload_shape)
    except JMESPathError as error:
        return f"Not a JMESPath expression: {error}"
    except RecursionError:
        return "The shape is nested too deeply."
    shape = Shape(PayloadFormat.CUSTOM, expression=payload_shape)
    for spec in CATALOG:
        if ALL_EVENT_TYPES in event_types or spec.name in event_types:
            try:
                shape.render(example_envelope(spec.name, spec.example))
            except ShapeError as error:
                return f"For the example of {spec.name}: {error}"
    return None


def example_envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_01jd3kexample0000000000000",
        "type": event_type,
        "timestamp": "2026-11-22T10:00:00Z",
        "tenant_id": "tn_01jd3kexample0000000000000",
        "data": data,
    }
