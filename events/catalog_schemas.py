"""JSON Schemas (draft 2020-12) of the event data of each catalog type, built from shared pieces.

Extra fields are always allowed (forward compatibility); only identifiers and defining fields are required.
"""

from typing import Any

Schema = dict[str, Any]

DRAFT = "https://json-schema.org/draft/2020-12/schema"  # the one draft events.schemas accepts

# --- scalar pieces ------------------------------------------------------------------------------------

_ID: Schema = {"type": "string", "minLength": 1}
_TEXT: Schema = {"type": ["string", "null"]}
_PHONE: Schema = {"type": ["string", "null"], "description": "A phone number, E.164 where the publisher has it."}
_TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_STRINGS: Schema = {"type": "array", "items": {"type": "string"}}


def _described(piece: Schema, description: str) -> Schema:
    return {**piece, "description": description}


def _reference(description: str, **properties: Schema) -> Schema:
    """Another object named by its id (and a few fields for display); null when there is none."""
    return {
        "type": ["object", "null"],
        "description": description,
        "required": ["id"],
        "properties": {"id": _ID, "name": _TEXT, **properties},
    }


def _schema(name: str, description: str, properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {
        "$schema": DRAFT,
        "title": name,
        "description": description,
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = list(required)
    return schema


_PERSON = _reference("A team member: the id, and the name when known.")
_CONTACT_REF = _reference("The contact: the id, and the name and phone number when known.", phone_number=_PHONE)

# --- message ------------------------------------------------------------------------------------------

_MESSAGE: Schema = {
    "id": _described(_ID, "The message's id."),
    "text": _described(_TEXT, "The message body; null for a message with media only."),
    "direction": {"type": "string", "enum": ["inbound", "outbound"]},
    "status": _described(_TEXT, "The delivery status, e.g. received, sent, delivered, failed."),
    "phone_number": _described(_PHONE, "The contact's phone number."),
    "chat_id": _described(_ID, "The chat (conversation) the message belongs to."),
    "contact": _CONTACT_REF,
}
_MESSAGE_REQUIRED = ("id", "direction", "chat_id")

# --- chat ---------------------------------------------------------------------------------------------

_CHAT: Schema = {
    "id": _described(_ID, "The chat's id."),
    "status": _described({"type": "string", "minLength": 1}, "The chat's status, e.g. open, closed, pending."),
    "inbox_id": _described(_ID, "The inbox the chat is in."),
    "assignee": _PERSON,
    "contact": _CONTACT_REF,
    "labels": _STRINGS,
}
_CHAT_REQUIRED = ("id", "status")

# --- contact ------------------------------------------------------------------------------------------

_CONTACT: Schema = {
    "id": _described(_ID, "The contact's id."),
    "first_name": _TEXT,
    "last_name": _TEXT,
    "phone_number": _PHONE,
    "email": _TEXT,
    "groups": _described(_STRINGS, "The groups (lists) the contact is in."),
    "source": _described(_TEXT, "How the contact was added, e.g. import, web_form, keyword_optin."),
    "keyword": _described(_TEXT, "The keyword the contact texted, if any (e.g. STOP, START, JOIN)."),
}
_CONTACT_REQUIRED = ("id",)


SCHEMAS: dict[str, Schema] = {
    "message.received": _schema(
        "message.received", "The message a contact sent to the tenant.", _MESSAGE, _MESSAGE_REQUIRED
    ),
    "message.sent": _schema("message.sent", "The message the tenant sent to a contact.", _MESSAGE, _MESSAGE_REQUIRED),
    "message.updated": _schema(
        "message.updated",
        "An outbound message whose delivery status changed.",
        {**_MESSAGE, "error_code": {"type": ["string", "integer", "null"], "description": "Why delivery failed."}},
        _MESSAGE_REQUIRED,
    ),
    "chat.opened": _schema("chat.opened", "The chat that was opened.", _CHAT, _CHAT_REQUIRED),
    "chat.closed": _schema(
        "chat.closed",
        "The chat that was closed.",
        {**_CHAT, "closed_by": _described(_PERSON, "Who closed the chat; null when closed automatically.")},
        _CHAT_REQUIRED,
    ),
    "chat.pending": _schema("chat.pending", "The chat that was marked pending.", _CHAT, _CHAT_REQUIRED),
    "chat.reassigned": _schema(
        "chat.reassigned",
        "The chat that was assigned to another team member (the new one is the assignee).",
        {**_CHAT, "previous_assignee": _described(_PERSON, "Who the chat was assigned to before; null if nobody.")},
        _CHAT_REQUIRED,
    ),
    "chat.transferred": _schema(
        "chat.transferred",
        "The chat that was moved to another inbox (the new one is inbox_id).",
        {**_CHAT, "previous_inbox_id": _described(_ID, "The inbox the chat was in before.")},
        _CHAT_REQUIRED,
    ),
    "chat.updated": _schema("chat.updated", "The chat whose labels, notes or fields changed.", _CHAT, _CHAT_REQUIRED),
    "contact.created": _schema("contact.created", "The contact that was created.", _CONTACT, _CONTACT_REQUIRED),
    "contact.updated": _schema(
        "contact.updated",
        "The contact whose fields changed.",
        {**_CONTACT, "changed_fields": _described(_STRINGS, "The names of the fields that changed.")},
        _CONTACT_REQUIRED,
    ),
    "contact.opted_out": _schema(
        "contact.opted_out",
        "The contact that opted out of messages.",
        {**_CONTACT, "opted_out_at": _TIMESTAMP},
        _CONTACT_REQUIRED,
    ),
    "contact.opted_in": _schema(
        "contact.opted_in",
        "The contact that opted back in to messages.",
        {**_CONTACT, "opted_in_at": _TIMESTAMP},
        _CONTACT_REQUIRED,
    ),
    "contact.double_opt_in": _schema(
        "contact.double_opt_in",
        "The contact that confirmed a double opt-in request.",
        {**_CONTACT, "confirmed_at": _TIMESTAMP},
        _CONTACT_REQUIRED,
    ),
    "contact.double_opt_restricted": _schema(
        "contact.double_opt_restricted",
        "The contact that did not confirm double opt-in and cannot be messaged.",
        {**_CONTACT, "restricted_at": _TIMESTAMP},
        _CONTACT_REQUIRED,
    ),
    "keyword.opted_in": _schema(
        "keyword.opted_in",
        "The contact that texted a keyword (keyword) and joined its list (list_id).",
        {**_CONTACT, "list_id": _described(_ID, "The list the keyword adds contacts to.")},
        _CONTACT_REQUIRED,
    ),
    "campaign.sent": _schema(
        "campaign.sent",
        "The broadcast campaign that finished sending, with its counts.",
        {
            "id": _described(_ID, "The campaign's id."),
            "name": _TEXT,
            "recipients": _described(_COUNT, "How many contacts the campaign was addressed to."),
            "sent": _described(_COUNT, "How many messages were sent."),
            "failed": _described(_COUNT, "How many messages failed."),
        },
        ("id",),
    ),
    "call.incoming": _schema(
        "call.incoming",
        "The call a contact is making to the tenant's number.",
        {
            "id": _described(_ID, "The call's id."),
            "from": _described({"type": "string", "minLength": 1}, "The caller's phone number."),
            "to": _described({"type": "string", "minLength": 1}, "The tenant's number being called."),
            "contact": _CONTACT_REF,
        },
        ("id", "from", "to"),
    ),
    "webhook.test": _schema(
        "webhook.test",
        "A test event: by default a note and an example message, but any data the sender chose (another "
        "type's example, or the API caller's own data), so nothing is required and no field's type is fixed.",
        {
            "message": {"description": "A human-readable note, by default a string."},
            "example": {"description": "An example of another event's data, by default a message."},
        },
    ),
}
