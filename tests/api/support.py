"""Helpers for the REST API tests: clients for every kind of caller, rows to act on, a snapshot of the database."""

from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Attempt, Delivery, DeliveryStatus
from events.models import Event, EventType
from subscriptions.models import Endpoint, EndpointSecret
from tests.factories import MembershipFactory, UserFactory, make_endpoint
from webhookhub import publish
from webhookhub.accounts.models import ApiKey, Membership, Role, Tenant
from webhookhub.accounts.services import create_api_key

URL = "https://93.184.216.34/hook"  # a public literal: no DNS, and nothing is sent (no worker runs)
API = "/api/v1"


def key_client(tenant, role: str = Role.ADMIN) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {create_api_key(tenant=tenant, role=role).key}")


def make_user(**fields):
    user = UserFactory(**fields)
    user.save()  # UserFactory skips the save after set_password: unsaved, the session's auth hash would not match
    return user


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def session_client(tenant=None, role: str = Role.ADMIN, **user_fields) -> APIClient:
    user = make_user(**user_fields)
    if tenant is not None:
        MembershipFactory(user=user, tenant=tenant, role=role)
    return logged_in(user)


def superuser_client() -> APIClient:
    return session_client(is_superuser=True, is_staff=True)


def endpoint_for(tenant, **kwargs) -> Endpoint:
    return make_endpoint(tenant, URL, **kwargs).endpoint


def failed_delivery(tenant, endpoint=None, *, type: str = "message.received") -> Delivery:
    """A delivery whose retries are exhausted (as a worker would leave it)."""
    endpoint = endpoint or endpoint_for(tenant)
    event = publish(tenant=tenant, type=type, data={"n": 1}, endpoint_ids=[endpoint.pk])
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED,
        attempt_count=8,
        next_attempt_at=None,
        last_status_code=500,
        completed_at=timezone.now(),
    )
    delivery.refresh_from_db()
    return delivery


def results(response) -> list[dict]:
    return response.json()["results"]


def ids(response, key: str = "id") -> list:
    return [row[key] for row in results(response)]


def _rows(model, *fields: str) -> dict:
    return {pk: values for pk, *values in model.objects.values_list("pk", *fields)}


def db_state() -> dict:
    """Everything an API call could change (except ApiKey.last_used_at, which every key-authenticated call sets).

    Rows of tenant-owned tables start with their tenant's id.
    """
    return {
        "tenants": _rows(Tenant, "slug"),
        "memberships": _rows(Membership, "tenant_id", "user_id", "role"),
        "endpoints": _rows(
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
            "failing_since",
            "updated_at",
        ),
        "secrets": _rows(EndpointSecret, "endpoint_id", "secret", "expires_at"),
        "events": _rows(Event, "tenant_id", "event_type_id", "source", "body", "idempotency_key"),
        "deliveries": _rows(
            Delivery,
            "event_id",
            "endpoint_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "lease_until",
            "completed_at",
        ),
        "attempts": _rows(Attempt, "delivery_id", "number", "outcome"),
        "api_keys": _rows(ApiKey, "tenant_id", "name", "role", "hashed_key", "revoked_at"),
        "event_types": _rows(EventType, "description", "archived"),
    }
