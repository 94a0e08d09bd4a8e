"""What ``GET /metrics`` reports, read from the database: the same numbers from any web process.

Counters come from the totals the publishing statement and the recorder keep
(``deliveries.numbers.tallying``); gauges are counted from the deliveries and endpoints when
scraped. Every read is an aggregate over an index or a handful of rows per tenant, so a scrape
stays cheap however long the delivery log is. With ``by_tenant`` each number is split by tenant
(its slug); otherwise everything is summed under the key ``""``.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet, Sum

from accounts.models import Tenant
from deliveries.models import (
    LATENCY_COLUMNS,
    AttemptTotal,
    Delivery,
    PublishTotal,
    lease_held,
)
from deliveries.numbers.tallying import ATTEMPT_COUNTERS
from deliveries.selectors import LIMITED_BY_WORDS, blocked_keys
from ground.conf import setting
from subscriptions.models import Endpoint

ENDPOINT_STATES = ("enabled", "paused", "circuit_open", "disabled")
PENDING_STATES = ("due", "in_flight", "scheduled")


@dataclass
class AttemptCounts:
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    requests: int = 0  # attempts that made a request: the duration histogram's count
    duration_ms_sum: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))


@dataclass
class Snapshot:
    """Numbers by tenant label ("" when not split by tenant)."""

    events_published: dict[str, int]
    deliveries_created: dict[str, int]
    schema_violations: dict[str, int]  # events published although their data broke the schema (mode warn)
    attempts: dict[str, AttemptCounts]
    pending: dict[tuple[str, str], int]  # (tenant, state)
    lag_seconds: dict[str, float]  # the oldest due delivery nobody is sending, of a sendable endpoint
    endpoints: dict[tuple[str, str], int]  # (tenant, state)
    ordering_keys_blocked: dict[str, int]  # keys waiting longer than ORDERING_BLOCKED_AFTER_SECONDS
    concurrency_limited: dict[tuple[str, str], int]  # (tenant, what cut the limit): held below the ceiling


class _Labels:
    """Tenant id -> label: the slug when split by tenant (the id once the tenant is gone), else ""."""

    def __init__(self, by_tenant: bool) -> None:
        self.by_tenant = by_tenant
        self._slugs = dict(Tenant.objects.values_list("pk", "slug")) if by_tenant else {}

    def __call__(self, tenant_id: str) -> str:
        return self._slugs.get(tenant_id, tenant_id) if self.by_tenant else ""

    def rows(self, queryset: QuerySet[Any], tenant_field: str, **aggregates: Any) -> list[tuple[str, dict[str, Any]]]:
        """(label, aggregates) per tenant, or one ("", aggregates) over everything (zeros when empty)."""
        if self.by_tenant:
            grouped = queryset.values(group_tenant=F(tenant_field)).annotate(**aggregates).order_by()
            return [(self(row["group_tenant"]), row) for row in grouped]
        totals = queryset.aggregate(**aggregates)
        return [("", {name: value or 0 for name, value in totals.items()})]


def _published(label: _Labels) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    events: dict[str, int] = {}
    deliveries: dict[str, int] = {}
    violations: dict[str, int] = {}
    sums = {"e": Sum("events"), "d": Sum("deliveries"), "v": Sum("schema_violations")}
    for key, row in label.rows(PublishTotal.objects.all(), "tenant_id", **sums):
        events[key] = events.get(key, 0) + row["e"]
        deliveries[key] = deliveries.get(key, 0) + row["d"]
        violations[key] = violations.get(key, 0) + row["v"]
    return events, deliveries, violations


def _attempts(label: _Labels) -> dict[str, AttemptCounts]:
    sums = {f"sum_{column}": Sum(column) for column in ATTEMPT_COUNTERS}
    result: dict[str, AttemptCounts] = {}
    for key, row in label.rows(AttemptTotal.objects.all(), "tenant_id", **sums):
        counts = result.setdefault(key, AttemptCounts())
        counts.succeeded += row["sum_succeeded"]
        counts.retrying += row["sum_retrying"]
        counts.failed += row["sum_failed"]
        counts.requests += row["sum_requests"]
        counts.duration_ms_sum += row["sum_duration_ms_sum"]
        counts.latency = [a + row[f"sum_{c}"] for a, c in zip(counts.latency, LATENCY_COLUMNS, strict=True)]
    return result


def _by_state(rows: list[tuple[str, dict[str, Any]]], states: tuple[str, ...]) -> dict[tuple[str, str], int]:
    result: dict[tuple[str, str], int] = {}
    for key, row in rows:
        for state in states:
            result[(key, state)] = result.get((key, state), 0) + row[state]
    return result


def _pending(label: _Labels, now: datetime) -> dict[tuple[str, str], int]:
    leased = lease_held(now)
    counts = {
        "in_flight": Count("pk", filter=leased),
        "due": Count("pk", filter=~leased & Q(next_attempt_at__lte=now)),
        "scheduled": Count("pk", filter=~leased & Q(next_attempt_at__gt=now)),
    }
    pending = Delivery.objects.pending()
    return _by_state(label.rows(pending, "endpoint__tenant_id", **counts), PENDING_STATES)


def _held_back(now: datetime) -> Q:
    """Endpoints the scheduler holds back on purpose: paused by Retry-After, or circuit open."""
    return Q(endpoint__schedule__paused_until__gt=now) | Q(endpoint__schedule__circuit_opened_at__isnull=False)


def _lag(label: _Labels, now: datetime) -> dict[str, float]:
    waiting = Delivery.objects.due_unowned(now).free_to_go(now).filter(endpoint__enabled=True).exclude(_held_back(now))
    result: dict[str, float] = {}
    for key, row in label.rows(waiting, "endpoint__tenant_id", oldest=Min("next_attempt_at")):
        lag = max(0.0, (now - row["oldest"]).total_seconds()) if row["oldest"] else 0.0
        result[key] = max(result.get(key, 0.0), lag)
    return result


def _endpoints(label: _Labels, now: datetime) -> dict[tuple[str, str], int]:
    open_circuit = Q(schedule__circuit_opened_at__isnull=False)
    paused = Q(schedule__paused_until__gt=now) & ~open_circuit
    counts = {
        "disabled": Count("pk", filter=Q(enabled=False)),
        "circuit_open": Count("pk", filter=Q(enabled=True) & open_circuit),
        "paused": Count("pk", filter=Q(enabled=True) & paused),
        "enabled": Count("pk", filter=Q(enabled=True) & ~open_circuit & ~paused),
    }
    return _by_state(label.rows(Endpoint.objects.all(), "tenant_id", **counts), ENDPOINT_STATES)


def _concurrency_limited(label: _Labels) -> dict[tuple[str, str], int]:
    """Enabled adaptive endpoints whose limit (as the owner last wrote it) is below their ``max_in_flight``
    because of what last cut it, by that cause; one that is only ramping up (nothing cut it) is not counted."""
    below_ceiling = Q(
        enabled=True,
        adaptive_concurrency=True,
        schedule__concurrency_limit__isnull=False,
        schedule__concurrency_limit__lt=F("max_in_flight"),
    )
    counts = {
        f"by_{cause}": Count("pk", filter=below_ceiling & Q(schedule__concurrency_limited_by=cause))
        for cause in LIMITED_BY_WORDS
    }
    result: dict[tuple[str, str], int] = {}
    for key, row in label.rows(Endpoint.objects.all(), "tenant_id", **counts):
        for cause in LIMITED_BY_WORDS:
            result[(key, cause)] = result.get((key, cause), 0) + row[f"by_{cause}"]
    return result


def _blocked(label: _Labels, now: datetime) -> dict[str, int]:
    """Ordering keys blocked longer than the setting, by tenant label."""
    keys = blocked_keys(now=now, older_than_seconds=setting("ORDERING_BLOCKED_AFTER_SECONDS"))
    if not label.by_tenant:
        return {"": len(keys)}
    tenants = dict(Endpoint.objects.filter(pk__in={key.endpoint_id for key in keys}).values_list("pk", "tenant_id"))
    return dict(Counter(label(tenants[key.endpoint_id]) for key in keys if key.endpoint_id in tenants))


def snapshot(*, now: datetime, by_tenant: bool) -> Snapshot:
    label = _Labels(by_tenant)
    events, deliveries, violations = _published(label)
    return Snapshot(
        events_published=events,
        deliveries_created=deliveries,
        schema_violations=violations,
        attempts=_attempts(label),
        pending=_pending(label, now),
        lag_seconds=_lag(label, now),
        endpoints=_endpoints(label, now),
        ordering_keys_blocked=_blocked(label, now),
        concurrency_limited=_concurrency_limited(label),
    )
