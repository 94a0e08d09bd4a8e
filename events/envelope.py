"""The JSON envelope every endpoint receives, serialised once and stored as the exact body."""

import json
from datetime import UTC, datetime
from typing import Any

from events.exceptions import InvalidPayload


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


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
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"Event data is not JSON-serialisable: {exc}") from exc
    if _contains_nul(data):
        raise InvalidPayload("Event data must not contain NUL (\\u0000) characters.")
    return body
