"""The JSON envelope every endpoint receives, serialised once and stored as the exact body."""

import json
from datetime import UTC, datetime
from typing import Any

from events.exceptions import InvalidPayload


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def unstorable_text(value: Any) -> str | None:
    """Why some string (or key) in ``value`` cannot be stored and sent as UTF-8 JSON, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL (\\u0000) characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired surrogates (e.g. \\ud800)"
        return None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    return next((problem for item in items if (problem := unstorable_text(item))), None)


def plainly_storable(body: str) -> bool:
    """Whether a serialised body shows no sign of an unstorable string, checked at C speed instead of walking the
    data: ``json.dumps`` writes a NUL as ``\\u0000`` and keeps an unpaired surrogate, which UTF-8 cannot encode.
    False (a text that merely spells ``\\u0000`` too) leaves the decision to ``unstorable_text``."""
    if "\\u0000" in body:
        return False
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def render_body(*, event_id: str, event_type: str, occurred_at: datetime, tenant_id: str, data: Any) -> str:
    if not isinstance(data, dict):
        raise InvalidPayload(f"Event data must be a JSON object, not {type(data).__name__}.")
    envelope = {
        "id": event_id,
        "type": event_type,
        "timestamp": format_timestamp(occurred_at),
        "tenant_id": tenant_id,
        "data": data,
    }
    try:
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        problem = None if plainly_storable(body) else unstorable_text(data)
    except RecursionError as exc:
        raise InvalidPayload("Event data is nested too deeply.") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"Event data is not JSON-serialisable: {exc}") from exc
    if problem:
        raise InvalidPayload(f"Event data {problem}.")
    return body
