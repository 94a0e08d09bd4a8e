"""Shared by the benchmark helpers: the bench tenant and the ~1 KB message.received payload."""

import os

import django

TENANT_SLUG = "bench"
TEXT = (
    "Hi! Just confirming our meeting tomorrow at 10:00 in the main office. "
    "Please bring the signed contract, the updated price list and the two "
    "sample units we talked about last week. If anything changes, reply to "
    "this message or call me. Parking is available behind the building; use "
    "the side entrance, the front door is closed for renovation until Friday. "
    "Thanks and see you soon! "
)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    django.setup()


def message_data(run: str, i: int) -> dict:
    return {
        "id": f"msg_{run}_{i:08d}",
        "text": TEXT,
        "direction": "inbound",
        "status": "received",
        "phone_number": f"+3519100{i % 5000:05d}",
        "chat_id": f"chat_{i % 997:05d}",
        "contact": {"id": f"ct_{i % 5000:06d}", "name": "Ana Pereira", "phone_number": "+351910000000"},
        "metadata": {"locale": "pt-PT", "seq": i, "tags": ["bench", "inbound"]},
    }
