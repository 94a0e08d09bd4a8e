"""Helpers for the REST API tests: clients for every kind of caller, rows to act on, a snapshot of the database."""

from rest_framework.test import APIClient

from deliveries.models import Attempt, Delivery
from events.models import Event, EventType
from subscriptions.models import Endpoint, EndpointHealth, EndpointSecret
from tests.factories import URL, endpoint_for, failed_delivery
from tests.support.clients import member_client
from tests.support.db import rows
from webhookhub.accounts.models import ApiKey, Membership, Role, Tenant
from webhookhub.accounts.services import create_api_key

# Re-exported for the modules that still import them from here; new code imports them from tests.factories.
__all__ = ["URL", "endpoint_for", "failed_delivery"]

API = "/api/v1"


def key_client(tenant, role: str = Role.ADMIN) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {create_api_key(tenant=tenant, role=role).key}")


def session_client(tenant=None, role: str = Role.ADMIN, **user_fields) -> APIClient:
    """A REST client with a logged-in session; its user is a member of ``tenant`` with ``role`` when given."""
    return member_client(tenant, role, client_class=APIClient, **user_fields)


def superuser_client() -> APIClient:
    return session_client(is_superuser=True, is_staff=True)


def results(response) -> list[dict]:
    return response.json()["results"]


def ids(response, key: str = "id") -> list:
    return [row[key] for row in results(response)]


def db_state() -> dict:
    """Everything an API call could change (except ApiKey.last_used_at, which every key-authenticated call sets).

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
            "updated_at",
        ),
        "health": rows(EndpointHealth, "consecutive_failures", "failing_since"),
        "secrets": rows(EndpointSecret, "endpoint_id", "secret", "expires_at"),
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
