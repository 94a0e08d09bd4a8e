"""The event-type catalog as the dashboard shows it: each type with the schema mode publishing applies to it now
(``events.schemas.mode_of``), its schema and its example, pretty-printed."""

import json
from dataclasses import dataclass
from typing import Any

from events.models import EventType
from events.schemas import mode_of


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    description: str
    mode: str  # in force: the type's own, or the deployment's
    own_mode: bool
    schema: str  # pretty JSON, or "" for none
    example: str  # pretty JSON


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def catalog() -> list[CatalogEntry]:
    """The types endpoints can subscribe to (archived ones left out), by name."""
    return [
        CatalogEntry(
            name=event_type.name,
            description=event_type.description,
            mode=mode_of(event_type.name),
            own_mode=bool(event_type.schema_mode),
            schema=_pretty(event_type.schema) if event_type.schema is not None else "",
            example=_pretty(event_type.example),
        )
        for event_type in EventType.objects.filter(archived=False).order_by("name")
    ]
