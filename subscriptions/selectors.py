"""Reads: which endpoints want an event, and the secrets that sign for an endpoint."""

from datetime import datetime
from typing import Any

from django.db.models import Q

from subscriptions.models import Endpoint, EndpointSecret
from webhookhub.accounts.models import Role, Tenant

_MISSING = object()


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def filter_matches(endpoint_filter: dict[str, Any] | None, data: dict[str, Any]) -> bool:
    """Every ``path: expected`` must hold; a list of expected values means any of them."""
    for path, expected in (endpoint_filter or {}).items():
        actual = _lookup(data, path)
        allowed = expected if isinstance(expected, list) else [expected]
        if actual is _MISSING or actual not in allowed:
            return False
    return True


def matching_endpoint_ids(*, tenant: Tenant, event_type: str, data: dict[str, Any]) -> list[str]:
    """Enabled endpoints of the tenant subscribed to ``event_type`` whose filter accepts ``data``."""
    rows = Endpoint.objects.filter(tenant=tenant, enabled=True).values_list("id", "event_types", "filter")
    return [
        endpoint_id
        for endpoint_id, event_types, endpoint_filter in rows
        if ("*" in event_types or event_type in event_types) and filter_matches(endpoint_filter, data)
    ]


def signing_secrets(endpoints: list[Endpoint], *, now: datetime) -> dict[str, list[str]]:
    """Live secrets per endpoint id, newest (primary) first."""
    result: dict[str, list[str]] = {endpoint.pk: [] for endpoint in endpoints}
    live = EndpointSecret.objects.filter(endpoint__in=result.keys()).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    for secret in live.order_by("-created_at", "-id"):
        result[secret.endpoint_id].append(secret.secret)
    return result


def tenant_admin_emails(tenant: Tenant) -> list[str]:
    return sorted(
        {
            email
            for email in tenant.memberships.filter(role=Role.ADMIN, user__is_active=True).values_list(
                "user__email", flat=True
            )
            if email
        }
    )


def owned_endpoint_ids(*, tenant: Tenant, endpoint_ids: list[str]) -> list[str]:
    """The given endpoints that belong to ``tenant`` (enabled or not), in the given order."""
    owned = set(Endpoint.objects.filter(tenant=tenant, pk__in=endpoint_ids).values_list("pk", flat=True))
    return [endpoint_id for endpoint_id in dict.fromkeys(endpoint_ids) if endpoint_id in owned]
