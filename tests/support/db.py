"""Snapshots of rows, for asserting what a call changed (or that it changed nothing)."""

from datetime import datetime
from typing import NamedTuple

from deliveries.models import Delivery


def rows(model, *fields: str) -> dict:
    """Every row of ``model`` as ``{pk: [field values...]}``, re-read from the database."""
    return {pk: values for pk, *values in model.objects.values_list("pk", *fields)}


class DeliveryState(NamedTuple):
    status: str
    next_attempt_at: datetime | None
    lease_until: datetime | None
    completed_at: datetime | None
    attempt_count: int


def delivery_state(delivery: Delivery) -> DeliveryState:
    """The scheduling columns of ``delivery`` (refreshed from the database): what resend and cancel change."""
    delivery.refresh_from_db()
    return DeliveryState(
        delivery.status, delivery.next_attempt_at, delivery.lease_until, delivery.completed_at, delivery.attempt_count
    )
