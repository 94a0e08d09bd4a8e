"""Emitter for ../shared/bench/emit_shim.py: one ``publish`` per event, each in its own transaction,
exactly as application code calls it."""

import uuid

from accounts.models import Tenant
from bench.common import TENANT_SLUG, message_data
from webhookhub import publish

_RUN = uuid.uuid4().hex[:12]
_tenant: Tenant | None = None


def prepare() -> None:
    global _tenant
    _tenant = Tenant.objects.get(slug=TENANT_SLUG)  # also opens the DB connection before the clock starts


def emit_one(i: int) -> str:
    return publish(tenant=_tenant, type="message.received", data=message_data(_RUN, i)).id
