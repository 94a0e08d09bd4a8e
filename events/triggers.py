"""Inbound triggers: creating and changing them, checking a request's key and rate, logging requests.

Turning a captured request into an event is ``webhookhub.web.triggers.view`` (it publishes, which
lives where the fan-out is).
"""

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from time import monotonic, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import hash_api_key
from events import field_mapping
from events.envelope import unstorable_text
from events.exceptions import InvalidPayload
from events.models import EventType, Trigger, TriggerOutcome, TriggerRateWindow, TriggerRequest
from events.ordering import checked_key
from ground.conf import setting

TRIGGER_KEY_PREFIX = "whtrg_"
CAPTURED_MESSAGE = "Request captured successfully"
MAX_RATE_LIMIT_PER_MINUTE = 1_000_000


@dataclass(frozen=True)
class CreatedTrigger:
    trigger: Trigger
    api_key: str  # shown once, never stored


def _new_key() -> tuple[str, str, str]:
    key = TRIGGER_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(TRIGGER_KEY_PREFIX) + 6], hash_api_key(key)


def _event_type(name: Any) -> EventType:
    event_type = EventType.objects.filter(pk=name, archived=False).first() if isinstance(name, str) else None
    if event_type is None:
        raise ValidationError({"event_type": [f"Unknown or archived event type {name!r}; see the event-type catalog."]})
    return event_type


def validate_trigger_mapping(*, sample: Any, mapping: Any, identifier: Any, ordering_key_path: Any = "") -> None:
    if not isinstance(sample, dict):
        raise ValidationError({"sample": ["The sample must be a JSON object (an example request body)."]})
    checked = {"sample": sample, "mapping": mapping, "identifier": identifier, "ordering_key_path": ordering_key_path}
    for name, value in checked.items():
        try:
            problem = unstorable_text(value)
        except RecursionError as exc:
            raise ValidationError({name: [f"The {name} is nested too deeply."]}) from exc
        if problem:
            raise ValidationError({name: [f"The {name} {problem}."]})
    if not isinstance(identifier, str) or not identifier:
        raise ValidationError({"identifier": ["Name the path every request must carry, e.g. contact.phone."]})
    if not isinstance(ordering_key_path, str):
        raise ValidationError({"ordering_key_path": ["A path in the request body, e.g. conversation.id, or empty."]})
    try:
        errors = field_mapping.validate_mapping(
            sample=sample, mapping=mapping, identifier=identifier, ordering_key_path=ordering_key_path
        )
    except RecursionError as exc:
        raise ValidationError({"sample": ["The sample is nested too deeply."]}) from exc
    if errors:
        raise ValidationError(errors)


def _rate_limit(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RATE_LIMIT_PER_MINUTE:
        raise ValidationError(
            {"rate_limit_per_minute": [f"A whole number of requests per minute, 1 to {MAX_RATE_LIMIT_PER_MINUTE}."]}
        )
    return value


@transaction.atomic
def create_trigger(
    *,
    tenant: Tenant,
    name: str,
    event_type: str,
    sample: dict,
    identifier: str,
    mapping: dict | None = None,
    ordering_key_path: str = "",
    enabled: bool = True,
    rate_limit_per_minute: int | None = None,
    created_by=None,
) -> CreatedTrigger:
    """Validates everything (raises ValidationError by field), stores the key's hash, returns the key once."""
    mapping = {} if mapping is None else mapping
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": ["Give the trigger a name."]})
    type_ = _event_type(event_type)
    validate_trigger_mapping(sample=sample, mapping=mapping, identifier=identifier, ordering_key_path=ordering_key_path)
    key, prefix, hashed = _new_key()
    trigger = Trigger.objects.create(
        tenant=tenant,
        name=name.strip()[:200],
        event_type=type_,
        enabled=enabled,
        key_prefix=prefix,
        hashed_key=hashed,
        sample=sample,
        sample_paths=field_mapping.available_paths(sample),
        mapping=mapping,
        identifier=identifier,
        ordering_key_path=ordering_key_path,
        rate_limit_per_minute=_rate_limit(rate_limit_per_minute),
        created_by=created_by,
    )
    return CreatedTrigger(trigger=trigger, api_key=key)


_UNSET: Any = object()


@transaction.atomic
def update_trigger(
    *,
    trigger: Trigger,
    name: str = _UNSET,
    event_type: str = _UNSET,
    sample: dict = _UNSET,
    identifier: str = _UNSET,
    mapping: dict = _UNSET,
    ordering_key_path: str = _UNSET,
    enabled: bool = _UNSET,
    rate_limit_per_minute: int | None = _UNSET,
) -> Trigger:
    """Changes what is given; the mapping, identifier and ordering key path are checked against the (new) sample."""
    if name is not _UNSET:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError({"name": ["Give the trigger a name."]})
        trigger.name = name.strip()[:200]
    if event_type is not _UNSET:
        trigger.event_type = _event_type(event_type)
    if sample is not _UNSET:
        trigger.sample = sample
    if identifier is not _UNSET:
        trigger.identifier = identifier
    if mapping is not _UNSET:
        trigger.mapping = mapping
    if ordering_key_path is not _UNSET:
        trigger.ordering_key_path = ordering_key_path
    if enabled is not _UNSET:
        trigger.enabled = bool(enabled)
    if rate_limit_per_minute is not _UNSET:
        trigger.rate_limit_per_minute = _rate_limit(rate_limit_per_minute)
    validate_trigger_mapping(
        sample=trigger.sample,
        mapping=trigger.mapping,
        identifier=trigger.identifier,
        ordering_key_path=trigger.ordering_key_path,
    )
    if sample is not _UNSET:
        trigger.sample_paths = field_mapping.available_paths(sample)
    trigger.save()
    return trigger


class UnusableOrderingKey(ValueError):
    """The request body has no usable ordering key at the trigger's ``ordering_key_path``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"The ordering key {path!r} {problem}")
        self.path = path


def ordering_key_in(body: dict, path: str) -> str | None:
    """The event's ordering key: the string or integer at ``path`` of the body; None when the trigger names no path.

    Raises UnusableOrderingKey when the value is missing, of another type, or not a valid key (``events.ordering``).
    """
    if not path:
        return None
    value = field_mapping.value_at(body, path)
    if field_mapping.is_missing(value):
        raise UnusableOrderingKey(path, "is missing in the request body.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UnusableOrderingKey(path, f"must be a string or an integer, not {json.dumps(value)[:50]}.")
    try:
        return checked_key(str(value))
    except InvalidPayload as exc:
        raise UnusableOrderingKey(path, f"is not a valid key: {exc}") from exc


def rotate_trigger_key(*, trigger: Trigger) -> str:
    """A new key; the old one stops working at once. Returns the new key (shown once)."""
    key, prefix, hashed = _new_key()
    Trigger.objects.filter(pk=trigger.pk).update(key_prefix=prefix, hashed_key=hashed, updated_at=timezone.now())
    trigger.key_prefix, trigger.hashed_key = prefix, hashed
    return key


def key_matches(trigger: Trigger, key: str) -> bool:
    return hmac.compare_digest(trigger.hashed_key, hash_api_key(key))


def take_rate_slot(trigger: Trigger, *, now: float | None = None) -> int | None:
    """Counts this request in the trigger's minute; None if allowed, else seconds until the next minute.

    One upsert on a row per trigger, so every web process shares the count.
    """
    now = time() if now is None else now
    window = int(now // 60)
    limit = trigger.rate_limit_per_minute or setting("TRIGGER_RATE_LIMIT_PER_MINUTE")
    quote = connection.ops.quote_name
    table, minute, taken = quote(TriggerRateWindow._meta.db_table), quote("minute"), quote("taken")
    sql = (
        f"INSERT INTO {table} ({quote('trigger_id')}, {minute}, {taken}) VALUES (%s, %s, 1)"  # noqa: S608
        f" ON CONFLICT ({quote('trigger_id')}) DO UPDATE SET"
        # A process whose clock is behind counts in the newer minute; it never restarts the count.
        f" {taken} = CASE WHEN excluded.{minute} > {table}.{minute} THEN 1 ELSE {table}.{taken} + 1 END,"
        f" {minute} = CASE WHEN excluded.{minute} > {table}.{minute} THEN excluded.{minute} ELSE {table}.{minute} END"
        f" RETURNING {taken}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [trigger.pk, window])
        (count,) = cursor.fetchone()
    if count <= limit:
        return None
    return max(1, ceil((window + 1) * 60 - now))


def log_request(
    *,
    trigger: Trigger,
    status_code: int,
    detail: str = "",
    source_ip: str | None = None,
    body: bytes = b"",
    event_id: str | None = None,
) -> TriggerRequest:
    excerpt = body[: setting("TRIGGER_LOGGED_BODY_CHARS") * 4].decode("utf-8", errors="replace")
    return TriggerRequest.objects.create(
        trigger=trigger,
        received_at=timezone.now(),
        source_ip=source_ip or None,
        status_code=status_code,
        outcome=TriggerOutcome.CAPTURED if status_code < 300 else TriggerOutcome.REJECTED,
        detail=detail[:1000],
        event_id=event_id,
        body_excerpt=excerpt[: setting("TRIGGER_LOGGED_BODY_CHARS")].replace("\x00", "\ufffd"),
    )


_PRUNE_EVERY_SECONDS = 600.0
_last_prune = 0.0


def prune_trigger_requests(*, now: datetime, force: bool = False) -> int:
    """Delete logged requests older than ``TRIGGER_LOG_RETENTION_DAYS`` (at most every ten minutes per process)."""
    global _last_prune
    if not force and monotonic() - _last_prune < _PRUNE_EVERY_SECONDS:
        return 0
    _last_prune = monotonic()
    cutoff = now - timedelta(days=setting("TRIGGER_LOG_RETENTION_DAYS"))
    deleted, _ = TriggerRequest.objects.filter(received_at__lt=cutoff).delete()
    return deleted
