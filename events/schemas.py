"""Event data checked against its type's JSON Schema (draft 2020-12) when it is published.

The mode is the type's own (``EventType.schema_mode``) or else the deployment's ``SCHEMA_MODE``
(``WEBHOOKHUB_SCHEMA_MODE``): ``off`` checks nothing; ``warn`` publishes, logs the violation (once a
minute per type, path and rule in each process) and counts it in ``/metrics``; ``enforce`` refuses the
event with ``SchemaViolation``, which names each path and rule, and nothing is written.

Each process builds a type's validator once and reads the type's row again at most every
``MAX_AGE_SECONDS`` (at once in the process that saved it), so a changed schema or mode reaches every
publisher within that. The validator is ``jsonschema-rs`` (compiled, draft 2020-12): about 1 µs for a
message's data where the pure-Python ``jsonschema`` took about 60, a tenth of a publish's CPU.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from jsonschema_rs import Draft202012Validator, ValidationError, meta

from events.catalog_schemas import DRAFT
from events.exceptions import SchemaViolation, Violation
from events.models import EventType, SchemaMode
from ground.conf import setting

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 30.0
MAX_LISTED = 10  # violations named in one refusal
_LOG_EVERY_SECONDS = 60.0
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class _TypeSchema:
    mode: str  # the type's own mode, or "" for the deployment's
    validator: Draft202012Validator | None
    loaded_at: float


_cache: dict[str, _TypeSchema] = {}
_last_logged: dict[tuple[str, str, str], float] = {}


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot serve as an event type's schema, or None (for the admin and the API)."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        return "A schema is a JSON object."
    try:
        _compiled(schema)
    except ValidationError as error:
        return f"Not a valid JSON Schema (draft 2020-12): {error.message}"
    except ValueError as error:
        return f"Not a valid JSON Schema (draft 2020-12): {error}"
    return None


def _compiled(schema: dict[str, Any]) -> Draft202012Validator:
    """The schema's validator; ValueError (ValidationError) if it cannot be one. Nothing is fetched: a schema
    must not make the platform send requests, so ``$schema`` must name draft 2020-12 (the library would fetch
    any other meta-schema) and a ``$ref`` to another document is refused (offline)."""
    if schema.get("$schema", DRAFT) not in (DRAFT, DRAFT + "#"):
        raise ValueError(f"$schema must be {DRAFT} (or left out).")
    meta.validate(schema)
    return Draft202012Validator(schema, offline=True)  # also what the meta-schema lets through: a bad regex


def forget(name: str | None = None) -> None:
    """Drop this process's copy of a type's schema (or of all), so the next publish reads it again."""
    if name is None:
        _cache.clear()
    else:
        _cache.pop(name, None)


def reset_log_limits() -> None:
    """Log each violation again at its next occurrence (tests)."""
    _last_logged.clear()


def forget_saved_type(sender: type, instance: EventType, **kwargs: Any) -> None:
    """``post_save`` of an event type: this process applies its new schema and mode at once."""
    forget(instance.name)


def _type_schema(name: str) -> _TypeSchema:
    cached = _cache.get(name)
    if cached is not None and time.monotonic() - cached.loaded_at < MAX_AGE_SECONDS:
        return cached
    row = EventType.objects.filter(name=name).values_list("schema", "schema_mode").first()
    schema, mode = row if row is not None else (None, "")
    validator = None
    if isinstance(schema, dict):
        try:
            validator = _compiled(schema)
        except (ValidationError, ValueError):
            logger.warning("The schema of %s is not a usable JSON Schema: its events are not checked.", name)
    loaded = _TypeSchema(mode=mode, validator=validator, loaded_at=time.monotonic())
    if len(_cache) >= _MAX_CACHED:  # names come from publishers, unknown ones too: keep it bounded
        _cache.clear()
    _cache[name] = loaded
    return loaded


def mode_of(name: str) -> str:
    """The mode publishing applies to this type now."""
    return _type_schema(name).mode or setting("SCHEMA_MODE")


def violations(name: str, data: Any) -> list[Violation]:
    """How ``data`` breaks the type's schema (at most ``MAX_LISTED``, by path); empty if it fits or has none."""
    return _violations(_type_schema(name), data)


def _violations(type_schema: _TypeSchema, data: Any) -> list[Violation]:
    validator = type_schema.validator
    if validator is None or validator.is_valid(data):  # the usual answer, cheaper than listing errors
        return []
    found: list[Violation] = []
    for error in validator.iter_errors(data):
        found += _described(error)
    return sorted(found, key=lambda violation: violation.path)[:MAX_LISTED]


def _described(error: ValidationError) -> list[Violation]:
    where = "data" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.instance_path)
    rule = str(error.schema_path[-1]) if error.schema_path else "schema"
    if rule == "required":
        missing: Any = error.kind  # ValidationErrorKind.Required
        return [Violation(f"{where}.{missing.property}", rule, "is required")]
    return [Violation(where, rule, error.message)]


def check(name: str, data: Any) -> bool:
    """Apply the type's mode to ``data``: raises ``SchemaViolation`` under ``enforce``; True when the data broke
    the schema and goes out anyway (``warn``: logged here, counted by the caller with the publish)."""
    type_schema = _type_schema(name)
    mode = type_schema.mode or setting("SCHEMA_MODE")
    if mode == SchemaMode.OFF:
        return False
    found = _violations(type_schema, data)
    if not found:
        return False
    if mode == SchemaMode.ENFORCE:
        raise SchemaViolation(name, found)
    _log(name, found)
    return True


def _log(name: str, found: list[Violation]) -> None:
    now = time.monotonic()
    if len(_last_logged) >= _MAX_CACHED:  # paths hold array indices from the data: keep it bounded
        _last_logged.clear()
    for violation in found:
        key = (name, violation.path, violation.rule)
        if now - _last_logged.get(key, -_LOG_EVERY_SECONDS) >= _LOG_EVERY_SECONDS:
            _last_logged[key] = now
            logger.warning(  # path and rule only: the data itself stays out of the logs
                "Published %s although its data breaks the schema at %s (rule: %s)",
                name,
                violation.path,
                violation.rule,
                extra={"event_type": name, "path": violation.path, "rule": violation.rule},
            )
