"""The event-type catalog, declared once; the EventType table is synced from it after migrate."""

from dataclasses import dataclass, field, replace
from typing import Any

from events.catalog_schemas import SCHEMAS


@dataclass(frozen=True)
class EventTypeSpec:
    name: str
    description: str
    example: dict[str, Any]
    schema: dict[str, Any] | None = field(default=None)


_CONTACT = {
    "id": "ct_01jd3k7q2m",
    "first_name": "Ana",
    "last_name": "Silva",
    "phone_number": "+15555550123",
    "email": "ana@example.com",
    "groups": ["vip"],
    "source": "web_form",
    "keyword": None,
}
_MESSAGE = {
    "id": "msg_01jd3k9x4v",
    "text": "Hi! Is my order ready?",
    "direction": "inbound",
    "status": "received",
    "phone_number": "+15555550123",
    "chat_id": "chat_01jd3k8b7c",
    "contact": {"id": "ct_01jd3k7q2m", "name": "Ana Silva", "phone_number": "+15555550123"},
}
_CHAT = {
    "id": "chat_01jd3k8b7c",
    "status": "open",
    "inbox_id": "inb_01jd3k6a1e",
    "assignee": {"id": "usr_01jd3k5z0w", "name": "Sam Lee"},
    "contact": {"id": "ct_01jd3k7q2m", "name": "Ana Silva", "phone_number": "+15555550123"},
}


def _with_schemas(*specs: EventTypeSpec) -> tuple[EventTypeSpec, ...]:
    """Each spec with the JSON Schema of its data, from ``events.catalog_schemas``."""
    return tuple(replace(spec, schema=SCHEMAS[spec.name]) for spec in specs)


CATALOG: tuple[EventTypeSpec, ...] = _with_schemas(
    EventTypeSpec("message.received", "A contact sent a message to the tenant.", _MESSAGE),
    EventTypeSpec(
        "message.sent",
        "The tenant sent a message to a contact.",
        {
            **_MESSAGE,
            "id": "msg_01jd3ka2rt",
            "text": "Yes, ready for pickup.",
            "direction": "outbound",
            "status": "sent",
        },
    ),
    EventTypeSpec(
        "message.updated",
        "The delivery status of an outbound message changed (sent, delivered, failed).",
        {**_MESSAGE, "id": "msg_01jd3ka2rt", "direction": "outbound", "status": "delivered", "error_code": None},
    ),
    EventTypeSpec("chat.opened", "A chat was opened.", _CHAT),
    EventTypeSpec(
        "chat.closed", "A chat was closed.", {**_CHAT, "status": "closed", "closed_by": {"id": "usr_01jd3k5z0w"}}
    ),
    EventTypeSpec("chat.pending", "A chat was marked pending.", {**_CHAT, "status": "pending"}),
    EventTypeSpec(
        "chat.reassigned",
        "A chat was assigned to another team member.",
        {**_CHAT, "previous_assignee": {"id": "usr_01jd3k4y9v", "name": "Kim Park"}},
    ),
    EventTypeSpec(
        "chat.transferred",
        "A chat was moved to another inbox.",
        {**_CHAT, "previous_inbox_id": "inb_01jd3k3x8u"},
    ),
    EventTypeSpec("chat.updated", "A chat's labels, notes or fields changed.", {**_CHAT, "labels": ["order"]}),
    EventTypeSpec("contact.created", "A contact was created.", _CONTACT),
    EventTypeSpec("contact.updated", "A contact's fields changed.", {**_CONTACT, "changed_fields": ["email"]}),
    EventTypeSpec(
        "contact.opted_out",
        "A contact opted out of messages (e.g. replied STOP).",
        {**_CONTACT, "opted_out_at": "2026-11-22T10:00:00Z", "keyword": "STOP"},
    ),
    EventTypeSpec(
        "contact.opted_in",
        "A contact opted back in to messages.",
        {**_CONTACT, "opted_in_at": "2026-11-22T10:00:00Z", "keyword": "START"},
    ),
    EventTypeSpec(
        "contact.double_opt_in",
        "A contact confirmed a double opt-in request.",
        {**_CONTACT, "confirmed_at": "2026-11-22T10:00:00Z"},
    ),
    EventTypeSpec(
        "contact.double_opt_restricted",
        "A contact did not confirm double opt-in and cannot be messaged.",
        {**_CONTACT, "restricted_at": "2026-11-22T10:00:00Z"},
    ),
    EventTypeSpec(
        "keyword.opted_in",
        "A contact texted a keyword and joined its list.",
        {**_CONTACT, "keyword": "DEALS", "list_id": "lst_01jd3k2w7t"},
    ),
    EventTypeSpec(
        "campaign.sent",
        "A broadcast campaign finished sending.",
        {"id": "cmp_01jd3k1v6s", "name": "Black Friday", "recipients": 1200, "sent": 1187, "failed": 13},
    ),
    EventTypeSpec(
        "call.incoming",
        "A contact is calling the tenant's number.",
        {"id": "call_01jd3k0u5r", "from": "+15555550123", "to": "+15555550999", "contact": _MESSAGE["contact"]},
    ),
    EventTypeSpec(
        "webhook.test",
        "A test event sent from the admin or the API to check an endpoint.",
        {"message": "This is a test event from webhookhub.", "example": _MESSAGE},
    ),
)

TEST_EVENT_TYPE = "webhook.test"

# The ordering key of an event whose publisher names none, by the family of its type: a path over the
# envelope (see ``events.ordering``). The events of one conversation, or of one contact, keep their order.
_KEY_PATH_BY_FAMILY = {"message": "data.chat_id", "chat": "data.id", "contact": "data.id"}
ORDERING_KEY_PATHS: dict[str, str] = {
    spec.name: path for spec in CATALOG if (path := _KEY_PATH_BY_FAMILY.get(spec.name.split(".")[0])) is not None
}
