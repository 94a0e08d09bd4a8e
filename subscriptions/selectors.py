"""Reads: which endpoints want an event, and the secrets that sign for an endpoint."""

from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q

from events.models import EventType
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


def matching_endpoint_ids(*, tenant: Tenant, event_type: str, data: dict[str, Any]) -> list[str] | None:
    """Enabled endpoints of the tenant subscribed to ``event_type`` whose filter accepts ``data``;
    None when ``event_type`` is unknown or archived.

    One plain SQL query checks the type and reads the endpoints: this runs inside every
    publish, where compiling ORM queries cost more than running them.
    """
    quote = connection.ops.quote_name
    endpoint = {name: Endpoint._meta.get_field(name) for name in ("id", "event_types", "filter", "tenant", "enabled")}
    column = {name: "e." + quote(field.column) for name, field in endpoint.items()}
    sql = (
        f"SELECT {column['id']}, {column['event_types']}, {column['filter']}"  # noqa: S608 - identifiers only
        f" FROM {quote(EventType._meta.db_table)} t LEFT JOIN {quote(Endpoint._meta.db_table)} e"
        f" ON {column['tenant']} = %s AND {column['enabled']} = %s"
        f" WHERE t.{quote('name')} = %s AND t.{quote('archived')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk, True, event_type, False])
        rows = cursor.fetchall()
    if not rows:
        return None
    matching = []
    for endpoint_id, event_types, endpoint_filter in rows:
        if endpoint_id is None:
            continue
        event_types = endpoint["event_types"].from_db_value(event_types, None, connection)
        if ("*" in event_types or event_type in event_types) and filter_matches(
            endpoint["filter"].from_db_value(endpoint_filter, None, connection), data
        ):
            matching.append(endpoint_id)
    return matching


_SECRETS_CACHE_SECONDS = 300
_MAX_CACHED_ENDPOINTS = 10_000
# endpoint id -> (the endpoint's updated_at when read, valid until, live secrets newest first)
_secrets_cache: dict[str, tuple[datetime, datetime, list[str]]] = {}


def signing_secrets(endpoints: list[Endpoint], *, now: datetime) -> dict[str, list[str]]:
    """Live secrets per endpoint id, newest (primary) first.

    Cached per process until the endpoint changes (a rotation touches ``updated_at``),
    a secret expires, or five minutes pass.
    """
    result: dict[str, list[str]] = {}
    stale: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        cached = _secrets_cache.get(endpoint.pk)
        if cached and cached[0] == endpoint.updated_at and now < cached[1]:
            result[endpoint.pk] = cached[2]
        else:
            stale[endpoint.pk] = endpoint
    if not stale:
        return result
    fresh: dict[str, list[str]] = {endpoint_id: [] for endpoint_id in stale}
    valid_until = dict.fromkeys(stale, now + timedelta(seconds=_SECRETS_CACHE_SECONDS))
    live = EndpointSecret.objects.filter(endpoint__in=list(stale)).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    for secret in live.order_by("-created_at", "-id"):
        fresh[secret.endpoint_id].append(secret.secret)
        if secret.expires_at is not None:
            valid_until[secret.endpoint_id] = min(valid_until[secret.endpoint_id], secret.expires_at)
    if len(_secrets_cache) > _MAX_CACHED_ENDPOINTS:
        _secrets_cache.clear()
    for endpoint_id, secrets in fresh.items():
        _secrets_cache[endpoint_id] = (stale[endpoint_id].updated_at, valid_until[endpoint_id], secrets)
    return {**result, **fresh}


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
