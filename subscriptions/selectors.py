"""Reads: which endpoints want an event, and the secrets that sign for an endpoint."""

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q

from accounts.models import Role, Tenant
from ground.model_fields import concrete_field
from subscriptions.keys import V1A, public_key, schemes_signing
from subscriptions.models import Endpoint, EndpointSecret
from subscriptions.payloads import Shape, receivable_types, shape_of

_MISSING = object()


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _first_failing(endpoint_filter: dict[str, Any] | None, data: dict[str, Any]) -> tuple[str, list, Any] | None:
    """The first ``path: expected`` that does not hold, as (path, allowed values, actual value), or None."""
    for path, expected in (endpoint_filter or {}).items():
        actual = _lookup(data, path)
        allowed = expected if isinstance(expected, list) else [expected]
        if actual is _MISSING or actual not in allowed:
            return path, allowed, actual
    return None


def filter_matches(endpoint_filter: dict[str, Any] | None, data: dict[str, Any]) -> bool:
    """Every ``path: expected`` must hold; a list of expected values means any of them."""
    return _first_failing(endpoint_filter, data) is None


def filter_mismatch(endpoint_filter: dict[str, Any] | None, data: dict[str, Any]) -> str | None:
    """Why the filter turns ``data`` away (its first condition that fails), or None when it lets it through."""
    failing = _first_failing(endpoint_filter, data)
    if failing is None:
        return None
    path, allowed, actual = failing
    wanted = json.dumps(allowed[0]) if len(allowed) == 1 else f"one of {json.dumps(allowed)}"
    if actual is _MISSING:
        return f"The filter wants data.{path} to be {wanted}; the event has no data.{path}."
    return f"The filter wants data.{path} to be {wanted}, not {json.dumps(actual)}."


@dataclass(frozen=True)
class Route:
    endpoint_id: str
    event_types: list[str]
    filter: dict[str, Any] | None


@dataclass(frozen=True)
class Routes:
    """A tenant's enabled endpoints as of ``version`` (count and newest ``updated_at`` of all its endpoints), and
    the payload shapes of all of them (a test event goes to a disabled one too)."""

    tenant_id: str
    version: tuple[int, datetime | None]
    routes: tuple[Route, ...]
    loaded_at: float = 0.0  # time.monotonic()
    ordered: frozenset[str] = frozenset()  # the endpoints that receive each ordering key's events one at a time
    # The endpoints (enabled or not) that receive another body than the standard envelope, with its recipe.
    shapes: dict[str, Shape] = field(default_factory=dict)

    def endpoint_ids(self, event_type: str, data: dict[str, Any]) -> list[str]:
        """Endpoints subscribed to ``event_type`` whose filter accepts ``data``."""
        return [
            route.endpoint_id
            for route in self.routes
            if ("*" in route.event_types or event_type in route.event_types) and filter_matches(route.filter, data)
        ]

    def guard(self) -> tuple[str, list[Any]]:
        """A SQL condition that holds while the tenant's endpoints are still as read (see ``raw_insert``)."""
        quote = connection.ops.quote_name
        updated_at = quote(Endpoint._meta.get_field("updated_at").column)
        sql = (
            f"(SELECT count(*) = %s AND max({updated_at}) IS NOT DISTINCT FROM %s"  # noqa: S608 - identifiers only
            f" FROM {quote(Endpoint._meta.db_table)} WHERE {quote('tenant_id')} = %s)"
        )
        count, newest = self.version
        return sql, [count, newest, self.tenant_id]


_MAX_CACHED_TENANTS = 10_000
# The guard catches changes in the same statement; this bounds what it cannot see (clock skew
# between hosts stamping updated_at).
_ROUTES_MAX_AGE_SECONDS = 30
_routes_cache: dict[str, Routes] = {}


def routes(tenant: Tenant, *, fresh: bool = False) -> Routes:
    """The tenant's routes: from this process's cache unless ``fresh`` (one query, then cached).

    A cached value may be stale; writers that rely on it check ``Routes.guard()`` in the
    same statement. Plain SQL: this runs inside every publish, where compiling an ORM
    query cost more than running it.
    """
    cached = _routes_cache.get(tenant.pk)
    if cached is not None and not fresh and time.monotonic() - cached.loaded_at < _ROUTES_MAX_AGE_SECONDS:
        return cached
    quote = connection.ops.quote_name
    fields = [
        concrete_field(Endpoint, name)
        for name in (
            "id",
            "event_types",
            "filter",
            "enabled",
            "updated_at",
            "ordered",
            "payload_format",
            "payload_shape",
            "verification",
        )
    ]
    sql = (
        f"SELECT {', '.join(quote(field.column) for field in fields)}"  # noqa: S608 - identifiers only
        f" FROM {quote(Endpoint._meta.db_table)} WHERE {quote('tenant_id')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk])
        rows = cursor.fetchall()
    event_types_field: Any = fields[1]  # JSON fields: from_db_value decodes the column
    filter_field: Any = fields[2]
    enabled_rows = [row for row in rows if row[3]]
    result = Routes(
        loaded_at=time.monotonic(),
        tenant_id=tenant.pk,
        version=(len(rows), max((row[4] for row in rows), default=None)),
        routes=tuple(
            Route(
                endpoint_id=endpoint_id,
                event_types=receivable_types(
                    payload_format, event_types_field.from_db_value(event_types, None, connection)
                ),
                filter=filter_field.from_db_value(endpoint_filter, None, connection),
            )
            for endpoint_id, event_types, endpoint_filter, _, _, _, payload_format, *_ in enabled_rows
        ),
        ordered=frozenset(row[0] for row in enabled_rows if row[5]),
        shapes={row[0]: shape for row in rows if (shape := shape_of(row[0], *row[6:9])) is not None},
    )
    if len(_routes_cache) > _MAX_CACHED_TENANTS:
        _routes_cache.clear()
    _routes_cache[tenant.pk] = result
    return result


_SECRETS_CACHE_SECONDS = 300
_MAX_CACHED_ENDPOINTS = 10_000
# endpoint id -> (the endpoint's updated_at when read, valid until, live secrets newest first)
_secrets_cache: dict[str, tuple[datetime, datetime, list[str]]] = {}


def signing_secrets(endpoints: list[Endpoint], *, now: datetime) -> dict[str, list[str]]:
    """Live secrets and keys that sign per endpoint id, those of its ``signature_scheme`` (v1 secrets, then v1a
    keys), each newest (primary) first.

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
    wanted = {endpoint_id: schemes_signing(endpoint.signature_scheme) for endpoint_id, endpoint in stale.items()}
    valid_until = dict.fromkeys(stale, now + timedelta(seconds=_SECRETS_CACHE_SECONDS))
    live = EndpointSecret.objects.filter(endpoint__in=list(stale)).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    for secret in live.order_by("scheme", "-created_at", "-id"):  # "v1" sorts before "v1a"
        if secret.scheme not in wanted[secret.endpoint_id]:
            continue
        fresh[secret.endpoint_id].append(secret.secret)
        if secret.expires_at is not None:
            valid_until[secret.endpoint_id] = min(valid_until[secret.endpoint_id], secret.expires_at)
    if len(_secrets_cache) > _MAX_CACHED_ENDPOINTS:
        _secrets_cache.clear()
    for endpoint_id, secrets in fresh.items():
        _secrets_cache[endpoint_id] = (stale[endpoint_id].updated_at, valid_until[endpoint_id], secrets)
    return {**result, **fresh}


@dataclass(frozen=True)
class PublicKey:
    public_key: str  # whpk_...
    created_at: datetime
    expires_at: datetime | None  # a rotated-out key's end of grace; None for the primary


def public_keys(endpoint: Endpoint, *, now: datetime) -> list[PublicKey]:
    """The public keys of the endpoint's live v1a keys, primary (newest) first; the private keys stay here."""
    live = endpoint.secrets.filter(scheme=V1A).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return [
        PublicKey(public_key(key.secret), key.created_at, key.expires_at) for key in live.order_by("-created_at", "-id")
    ]


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
