"""Snapshots of rows, for asserting what a call changed (or that it changed nothing)."""

from datetime import datetime
from typing import NamedTuple

from accounts.models import ApiKey, Membership, Tenant
from deliveries.models import Attempt, Delivery
from events.models import Event, EventType
from subscriptions.models import Endpoint, EndpointHealth, EndpointSecret


def rows(model, *fields: str) -> dict:
    """Every row of ``model`` as ``{pk: [field values...]}``, re-read from the database."""
    return {pk: values for pk, *values in model.objects.values_list("pk", *fields)}


def db_state() -> dict:
    """Everything an API call, an admin or a dashboard action could change (except ApiKey.last_used_at,
    which every key-authenticated call sets).

    Rows of tenant-owned tables start with their tenant's id.
    """
    return {
        "tenants": rows(Tenant, "slug"),
        "memberships": rows(Membership, "tenant_id", "user_id", "role"),
        "endpoints": rows(
            Endpoint,
            "tenant_id",
            "url",
            "name",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "auth_type",
            "auth",
            "custom_headers",
            "timeout_s",
            "rate_limit_per_s",
            "filter",
            "signature_scheme",
            "tls_client_certificate",
            "tls_client_key",
            "tls_ca_certificate",
            "updated_at",
        ),
        "health": rows(EndpointHealth, "failed_in_a_row", "failing_since"),
        "secrets": rows(EndpointSecret, "endpoint_id", "scheme", "secret", "expires_at"),
        "events": rows(Event, "tenant_id", "event_type_id", "source", "body", "idempotency_key"),
        "deliveries": rows(
            Delivery,
            "event_id",
            "endpoint_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "lease_until",
            "completed_at",
        ),
        "attempts": rows(Attempt, "delivery_id", "number", "outcome"),
        "api_keys": rows(ApiKey, "tenant_id", "name", "role", "hashed_key", "revoked_at"),
        "event_types": rows(EventType, "description", "archived"),
    }


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
