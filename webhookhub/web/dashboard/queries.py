"""What the dashboard shows, read from the rollups (through ``deliveries.numbers.stats``, as the
API's stats are) and indexes: never a scan of the attempt log.

Every function takes the tenants in view (``None`` for all of them, a superuser's view)
and costs a bounded number of statements: windows read at most endpoints x buckets
rollup rows (hourly for days, five-minute for the last hour), and the log walks an
index newest first and stops after one page.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from deliveries import selectors
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.numbers.stats import Counts, counter_sums, counts_by_endpoint, rollup_rows, window_start
from deliveries.numbers.tallying import bucket_start
from deliveries.numbers.windows import Window
from ground.conf import setting
from subscriptions.certificates import expiry_warning
from subscriptions.models import AuthType, Endpoint
from subscriptions.selectors import PublicKey, public_keys


@dataclass(frozen=True)
class Bar:
    start: datetime
    counts: Counts


def series(tenant_ids: list[str] | None, window: Window, now: datetime, endpoint_id: str | None = None) -> list[Bar]:
    """One bar per ``window.step`` from the window's start to now, empty steps included."""
    rows = (
        rollup_rows(tenant_ids, window, now, endpoint_id).values("bucket_start").annotate(**counter_sums()).order_by()
    )
    step = int(window.step.total_seconds())
    first = bucket_start(now - window.length, step)
    steps = int((now - first).total_seconds()) // step + 1
    bars = [Bar(first + timedelta(seconds=step * i), Counts()) for i in range(steps)]
    for row in rows:
        index = int((row["bucket_start"] - first).total_seconds()) // step
        if 0 <= index < len(bars):
            bars[index].counts.merge(Counts.from_row(row))
    return bars


@dataclass(frozen=True)
class EndpointRow:
    endpoint: Endpoint
    counts: Counts
    retrying: int = 0  # its deliveries pending after at least one attempt, now
    now: datetime | None = None  # when the row was read: a pause is shown while it lasts beyond this

    @property
    def health(self):
        return getattr(self.endpoint, "health", None)

    @property
    def schedule(self) -> EndpointSchedule | None:
        return getattr(self.endpoint, "schedule", None)

    @property
    def circuit_open_since(self) -> datetime | None:
        return self.schedule.circuit_opened_at if self.schedule else None

    @property
    def paused_until(self) -> datetime | None:
        until = self.schedule.paused_until if self.schedule else None
        return until if until is not None and self.now is not None and until > self.now else None

    @property
    def concurrency(self) -> str:
        """The adaptive limit (or the fixed one) in words, as the API's ``scheduling.concurrency``."""
        schedule = self.schedule
        return selectors.concurrency_text(
            adaptive=self.endpoint.adaptive_concurrency,
            ceiling=self.endpoint.max_in_flight,
            limit=schedule.concurrency_limit if schedule else None,
            limited_by=schedule.concurrency_limited_by if schedule else "",
            limited_at=schedule.concurrency_limited_at if schedule else None,
        )

    @property
    def sort_key(self) -> tuple:
        """Worst first: disabled, then an open circuit, then the lowest success rate, then the longest
        failing streak."""
        rate = self.counts.success_rate
        streak = self.health.failed_in_a_row if self.health else 0
        circuit_closed = self.circuit_open_since is None
        return (self.endpoint.enabled, circuit_closed, 2.0 if rate is None else rate, -streak, str(self.endpoint))


def endpoints_in_view(tenant_ids: list[str] | None) -> QuerySet[Endpoint]:
    endpoints = Endpoint.objects.select_related("tenant")
    return endpoints if tenant_ids is None else endpoints.filter(tenant_id__in=tenant_ids)


def retrying_by_endpoint(tenant_ids: list[str] | None) -> dict[str, int]:
    """Deliveries pending after at least one attempt, by endpoint: one grouped count over the pending
    deliveries (the partial pending index), never the finished log."""
    retrying = Delivery.objects.pending().filter(attempt_count__gt=0)
    if tenant_ids is not None:
        retrying = retrying.filter(endpoint__tenant_id__in=tenant_ids)
    rows = retrying.values("endpoint_id").annotate(n=Count("pk")).order_by()
    return {row["endpoint_id"]: row["n"] for row in rows}


def health_table(tenant_ids: list[str] | None, window: Window, now: datetime) -> list[EndpointRow]:
    by_endpoint = counts_by_endpoint(tenant_ids, window, now)
    retrying = retrying_by_endpoint(tenant_ids)
    endpoints = endpoints_in_view(tenant_ids).select_related("health", "schedule")
    rows = [
        EndpointRow(endpoint, by_endpoint.get(endpoint.pk, Counts()), retrying.get(endpoint.pk, 0), now)
        for endpoint in endpoints
    ]
    return sorted(rows, key=lambda row: row.sort_key)


@dataclass(frozen=True)
class BlockedKeyRow:
    """An ordering key held back longer than ``ORDERING_BLOCKED_AFTER_SECONDS``, with its endpoint."""

    endpoint: Endpoint
    key: str
    waiting: int  # pending deliveries of the key, the one they wait for included
    since: datetime


def blocked_keys(tenant_ids: list[str] | None, endpoints: list[Endpoint], now: datetime) -> list[BlockedKeyRow]:
    """The blocked keys of ``endpoints`` (of the tenants in view), longest blocked first."""
    after = setting("ORDERING_BLOCKED_AFTER_SECONDS")
    if tenant_ids is None:
        found = selectors.blocked_keys(now=now, older_than_seconds=after)
    else:
        found = [
            key
            for tenant_id in tenant_ids
            for key in selectors.blocked_keys(now=now, older_than_seconds=after, tenant_id=tenant_id)
        ]
    by_id = {endpoint.pk: endpoint for endpoint in endpoints}
    rows = [BlockedKeyRow(by_id[k.endpoint_id], k.key, k.waiting, k.since) for k in found if k.endpoint_id in by_id]
    return sorted(rows, key=lambda row: row.since)


@dataclass(frozen=True)
class Overview:
    window: Window
    since: datetime
    totals: Counts
    retries_pending: int  # deliveries retrying now (pending after at least one attempt), of the endpoints in view
    endpoints: list[EndpointRow]
    bars: list[Bar]
    blocked_keys: list[BlockedKeyRow]

    @property
    def delivery_success_rate(self) -> float | None:
        """Of the deliveries that finished in the window (succeeded, or failed for good) and those still
        retrying now, the share that succeeded. A delivery retrying against a dead endpoint has not
        succeeded: counting finished ones only would show 100 % while it retries for a day."""
        counted = self.totals.successes + self.totals.failures + self.retries_pending
        return self.totals.successes / counted if counted else None


def overview(tenant_ids: list[str] | None, window: Window, now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    endpoints = health_table(tenant_ids, window, now)
    totals = Counts()
    for row in endpoints:
        totals.merge(row.counts)
    return Overview(
        window=window,
        since=window_start(window, now),
        totals=totals,
        retries_pending=sum(row.retrying for row in endpoints),
        endpoints=endpoints,
        bars=series(tenant_ids, window, now),
        blocked_keys=blocked_keys(tenant_ids, [row.endpoint for row in endpoints], now),
    )


# --- the delivery log ---------------------------------------------------------------------------

PAGE_SIZE = 50
RETRYING = "retrying"  # a log filter: pending after at least one attempt
DELIVERY_ID = re.compile(r"[0-9]{1,18}")
PAYLOAD_SEARCH_DEFAULT_SPAN = timedelta(hours=24)
SEARCH_SCAN_LIMIT = 20_000  # deliveries whose payloads one search reads at most


@dataclass(frozen=True)
class LogFilters:
    endpoint_ids: list[str] | None  # the endpoints in view (the tenants', or the one chosen); None: all
    event_type: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    event_id: str = ""
    ordering_key: str = ""
    text: str = ""


@dataclass(frozen=True)
class LogPage:
    deliveries: list[Delivery]
    newer: int | None  # cursor: the first delivery of this page, for the page before it
    older: int | None  # cursor: the last delivery of this page, for the page after it
    searched_since: datetime | None  # where a payload search started when no range was given


def _filtered(filters: LogFilters, now: datetime) -> tuple[QuerySet[Delivery], datetime | None]:
    deliveries = Delivery.objects.all()
    if filters.endpoint_ids is not None:
        deliveries = deliveries.filter(endpoint_id__in=filters.endpoint_ids)
    searched_since = None
    if filters.event_type:
        deliveries = deliveries.filter(event__event_type_id=filters.event_type)
    if filters.status == RETRYING:
        deliveries = deliveries.filter(status=DeliveryStatus.PENDING, attempt_count__gt=0)
    elif filters.status:
        deliveries = deliveries.filter(status=filters.status)
    if filters.event_id:
        deliveries = deliveries.filter(event_id=filters.event_id)
    if filters.ordering_key:
        deliveries = deliveries.filter(ordering_key=filters.ordering_key)
    if filters.text:
        deliveries, searched_since = _searched(deliveries, filters, now)
    since = filters.since
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if filters.until is not None:
        deliveries = deliveries.filter(created_at__lt=filters.until)
    return deliveries, searched_since


def _searched(deliveries: QuerySet[Delivery], filters: LogFilters, now: datetime):
    """An event or delivery id finds that; any other text is looked for in payloads and last errors.

    Reading payloads is bounded: to the day before the range's end unless a start was chosen,
    and to the newest ``SEARCH_SCAN_LIMIT`` deliveries of the range, so a search never reads a
    month of event bodies. The page says where the search stopped.
    """
    text = filters.text
    by_id = Q(event_id=text) | (Q(pk=int(text)) if DELIVERY_ID.fullmatch(text) else Q(pk__in=[]))
    if deliveries.filter(by_id).exists():
        return deliveries.filter(by_id), None
    searched_since = None
    if filters.since is None and not filters.event_id:
        searched_since = (filters.until or now) - PAYLOAD_SEARCH_DEFAULT_SPAN
        deliveries = deliveries.filter(created_at__gte=searched_since)
    elif filters.since is not None:
        deliveries = deliveries.filter(created_at__gte=filters.since)
    if filters.until is not None:
        deliveries = deliveries.filter(created_at__lt=filters.until)
    oldest_read = deliveries.order_by("-created_at", "-id").values_list("created_at", flat=True)[
        SEARCH_SCAN_LIMIT - 1 :
    ][:1]
    if oldest_read:
        searched_since = oldest_read[0]
        deliveries = deliveries.filter(created_at__gte=searched_since)
    return deliveries.filter(Q(event__body__icontains=text) | Q(last_error__icontains=text)), searched_since


def delivery_log(
    filters: LogFilters, *, before: int | None = None, after: int | None = None, now: datetime | None = None
) -> LogPage:
    """One page, newest first, by keyset on (created_at, id): no count, no offset."""
    now = now or timezone.now()
    deliveries, searched_since = _filtered(filters, now)
    cursor_id = before or after
    if cursor_id is not None:
        in_view = Delivery.objects.all()
        if filters.endpoint_ids is not None:
            in_view = in_view.filter(endpoint_id__in=filters.endpoint_ids)
        cursor = in_view.filter(pk=cursor_id).values_list("created_at", flat=True).first()
        if cursor is not None and before:
            deliveries = deliveries.filter(Q(created_at__lt=cursor) | Q(created_at=cursor, pk__lt=cursor_id))
        elif cursor is not None:
            deliveries = deliveries.filter(Q(created_at__gt=cursor) | Q(created_at=cursor, pk__gt=cursor_id))
    deliveries = deliveries.select_related("endpoint", "event").defer("event__data", "event__body")
    if after:
        rows = list(deliveries.order_by("created_at", "id")[: PAGE_SIZE + 1])
        more_newer, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE][::-1]
        more_older = bool(rows)
    else:
        rows = list(deliveries.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
        more_older, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        more_newer = before is not None and bool(rows)
    return LogPage(
        deliveries=rows,
        newer=rows[0].pk if rows and more_newer else None,
        older=rows[-1].pk if rows and more_older else None,
        searched_since=searched_since,
    )


def recent_failures(endpoint: Endpoint, limit: int = 20) -> list[Delivery]:
    """The endpoint's newest deliveries that failed or are waiting for a retry."""
    failing = Q(status=DeliveryStatus.FAILED) | Q(status=DeliveryStatus.PENDING, attempt_count__gt=0)
    return list(
        Delivery.objects.filter(failing, endpoint=endpoint)
        .select_related("event")
        .defer("event__data", "event__body")
        .order_by("-created_at", "-id")[:limit]
    )


# --- how it authenticates and signs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Security:
    """What the endpoint page says about auth, signatures and mutual TLS: nothing a receiver keeps secret (no
    auth value, client secret, private key or signing secret), only what identifies them."""

    auth_type: str  # its label
    token_url: str  # oauth2 only
    client_id: str  # oauth2 only
    signature_scheme: str  # its label
    public_keys: list[PublicKey]  # primary first
    has_client_certificate: bool
    has_ca_certificate: bool
    certificate_expires_at: datetime | None
    certificate_warning: str | None  # within 14 days of the expiry, or past it


def security(endpoint: Endpoint, now: datetime) -> Security:
    oauth2 = (endpoint.auth or {}) if endpoint.auth_type == AuthType.OAUTH2 else {}
    expires_at = endpoint.tls_client_certificate_expires_at
    return Security(
        auth_type=endpoint.get_auth_type_display(),
        token_url=oauth2.get("token_url", ""),
        client_id=oauth2.get("client_id", ""),
        signature_scheme=endpoint.get_signature_scheme_display(),
        public_keys=public_keys(endpoint, now=now),
        has_client_certificate=bool(endpoint.tls_client_certificate),
        has_ca_certificate=bool(endpoint.tls_ca_certificate),
        certificate_expires_at=expires_at,
        certificate_warning=expiry_warning(expires_at, now=now),
    )
