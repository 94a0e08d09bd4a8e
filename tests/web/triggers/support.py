"""Helpers for the trigger tests: a standard trigger, posting to it, and a snapshot of every row a call could change."""

import json

from django.test import Client

from deliveries.models import Delivery
from events.models import Event, Trigger, TriggerRequest
from events.triggers import CreatedTrigger, create_trigger
from tests.support.db import db_state, rows
from tests.web.api.support import API

EVENT_TYPE = "contact.created"
SAMPLE = {
    "contact": {"phone": "+15555550123", "name": "Ana Silva"},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "note": "call after 5pm",
}
IDENTIFIER = "contact.phone"
MAPPING = {"contact.phone": "phone", "items[0].sku": "order.first_sku"}
BODY = {
    "contact": {"phone": "+15555550999", "name": "Bo Chen"},
    "items": [{"sku": "Z-9", "qty": 3}],
    "note": "urgent",
}
# What BODY becomes under MAPPING: mapped fields, and every other leaf under "unmapped" by its path.
MAPPED_BODY = {
    "phone": "+15555550999",
    "order": {"first_sku": "Z-9"},
    "unmapped": {"contact.name": "Bo Chen", "items[0].qty": 3, "note": "urgent"},
}
CAPTURED = {"message": "Request captured successfully"}
TRIGGERS = API + "/triggers/"


def make_trigger(tenant, /, **fields) -> CreatedTrigger:
    """A trigger of ``tenant`` through the real service (SAMPLE, IDENTIFIER and MAPPING unless given)."""
    values = {"name": "crm", "event_type": EVENT_TYPE, "sample": SAMPLE, "identifier": IDENTIFIER, "mapping": MAPPING}
    return create_trigger(tenant=tenant, **{**values, **fields})


def capture_url(trigger_id: str) -> str:
    return f"/triggers/{trigger_id}"


def post_capture(trigger_id: str, body=BODY, *, key: str | None = None, content_type="application/json", **headers):
    """POST ``body`` (a dict is sent as JSON, str/bytes as they are) to a trigger, with ``key`` as the bearer."""
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    data = json.dumps(body) if isinstance(body, dict | list) else body
    return Client().post(capture_url(trigger_id), data=data, content_type=content_type, headers=headers)


def detail(trigger_id: str) -> str:
    return f"{TRIGGERS}{trigger_id}/"


def trigger_state() -> dict:
    """Everything ``db_state`` covers, plus the trigger tables (rows start with their tenant or trigger id)."""
    return {
        **db_state(),
        "triggers": rows(
            Trigger,
            "tenant_id",
            "name",
            "event_type_id",
            "enabled",
            "key_prefix",
            "hashed_key",
            "sample",
            "mapping",
            "identifier",
            "ordering_key_path",
            "rate_limit_per_minute",
            "updated_at",
        ),
        "trigger_requests": rows(TriggerRequest, "trigger_id", "status_code", "outcome", "event_id"),
    }


def nothing_published() -> bool:
    return not Event.objects.exists() and not Delivery.objects.exists()
