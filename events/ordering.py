"""Ordering keys of events: what a publisher may pass, and the key an event has when it passes none.

An ordered endpoint receives the events of one key one at a time, in publish order (see
``deliveries.services.ordering``). A publisher names the key (``publish(..., ordering_key=...)``);
without one, the catalog's key path for the event type gives it from the data (``message.*``: the
chat, ``chat.*`` and ``contact.*``: their own id), when the value there is a non-empty string or an
integer of at most ``MAX_LENGTH`` printable characters. Otherwise the event has no key and is never
held back.
"""

from typing import Any

from events.catalog import ORDERING_KEY_PATHS
from events.exceptions import InvalidPayload

MAX_LENGTH = 200


def checked_key(value: object) -> str:
    """A publisher's key, or InvalidPayload saying what is wrong with it."""
    if not isinstance(value, str) or not value:
        raise InvalidPayload("ordering_key must be a non-empty string.")
    if len(value) > MAX_LENGTH:
        raise InvalidPayload(f"ordering_key must be at most {MAX_LENGTH} characters, not {len(value)}.")
    if not value.isprintable():
        raise InvalidPayload("ordering_key must be printable characters only (no control characters or newlines).")
    return value


def key_of(event_type: str, data: dict[str, Any], given: object = None) -> str | None:
    """The event's key: the publisher's (checked), else the one its type's key path finds in ``data``, else None."""
    if given is not None:
        return checked_key(given)
    path = ORDERING_KEY_PATHS.get(event_type)
    if path is None:
        return None
    value: Any = data
    for part in path.split(".")[1:]:  # the path starts at the envelope: "data.chat_id"
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value and len(value) <= MAX_LENGTH and value.isprintable():
        return value
    return None
