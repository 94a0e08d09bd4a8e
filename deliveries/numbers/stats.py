"""Attempt statistics read from the rollups: the one source of counts, rates and latency
percentiles for the dashboard and the API's ``endpoints/{id}/stats/``.

A window is read in whole rollup buckets (five minutes for the last hour, hours for longer
windows), so it starts at ``window_start()``, up to one bucket before ``now - length``;
reading one costs at most endpoints x buckets rows, never a scan of the attempt log.
Latency percentiles count attempts that got a response and are estimated from the
histogram, linearly within a bucket.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, OuterRef, QuerySet, Subquery, Sum

from deliveries.models import (
    LATENCY_BOUNDS_MS,
    AttemptOutcome,
    AttemptRollup,
    Delivery,
    DeliveryStatus,
)
from deliveries.numbers.tallying import ROLLUP_COUNTERS, Tally, bucket_start
from deliveries.numbers.windows import Window
from subscriptions.models import Endpoint


class Counts(Tally):
    """Attempt counts and a latency histogram, summed over some rollup rows (``Counts.from_row``)."""

    @property
    def attempts(self) -> int:
        return self.successes + self.retries + self.failures

    @property
    def success_rate(self) -> float | None:
        """Attempts that succeeded."""
        return self.successes / self.attempts if self.attempts else None

    @property
    def delivery_success_rate(self) -> float | None:
        """Finished deliveries that succeeded (each finishes with one success or one final failure)."""
        finished = self.successes + self.failures
        return self.successes / finished if finished else None

    @property
    def first_attempt_success_rate(self) -> float | None:
        return self.first_successes / self.first_attempts if self.first_attempts else None

    def percentile(self, fraction: float) -> int | None:
        return latency_percentile(self.latency, fraction)


def latency_percentile(histogram: list[int], fraction: float) -> int | None:
    """Estimated from the histogram, linear within a bucket; the open last bucket reports its lower bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index == len(LATENCY_BOUNDS_MS):
                return lower
            upper = LATENCY_BOUNDS_MS[index]
            return round(lower + (upper - lower) * (rank - seen) / count)
        seen += count
    return LATENCY_BOUNDS_MS[-1]


def window_start(window: Window, now: datetime) -> datetime:
    """Where a window read in whole buckets starts."""
    return bucket_start(now - window.length, window.granularity)


def rollup_rows(
    tenant_ids: list[str] | None, window: Window, now: datetime, endpoint_id: str | None = None
) -> QuerySet[AttemptRollup]:
    """The rollup rows of a window, of these tenants (``None``: all) or of one endpoint."""
    rows = AttemptRollup.objects.filter(granularity=window.granularity, bucket_start__gte=window_start(window, now))
    if tenant_ids is not None:
        rows = rows.filter(tenant_id__in=tenant_ids)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    return rows


def counter_sums() -> dict[str, Sum]:
    """``annotate(**counter_sums())``: every rollup counter summed, named as the column."""
    return {column: Sum(column) for column in ROLLUP_COUNTERS}


def attempt_subqueries(window: Window, now: datetime) -> dict[str, Subquery]:
    """``attempts`` and ``successes`` in the window as subqueries on an endpoint's ``pk``, to annotate a
    list of endpoints in its own query (None where there were none)."""
    rows = rollup_rows(None, window, now).filter(endpoint=OuterRef("pk")).values("endpoint")
    return {
        "attempts": Subquery(rows.annotate(n=Sum(F("successes") + F("retries") + F("failures"))).values("n")),
        "successes": Subquery(rows.annotate(n=Sum("successes")).values("n")),
    }


def counts_by_endpoint(tenant_ids: list[str] | None, window: Window, now: datetime) -> dict[str, Counts]:
    rows = rollup_rows(tenant_ids, window, now).values("endpoint_id").annotate(**counter_sums()).order_by()
    return {row["endpoint_id"]: Counts.from_row(row) for row in rows}


@dataclass(frozen=True)
class EndpointStats:
    window_seconds: int
    since: datetime
    attempts: int
    by_outcome: dict[str, int]
    success_rate: float | None
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    pending_deliveries: int
    failed_deliveries: int


def endpoint_stats(*, endpoint: Endpoint, window: Window, now: datetime) -> EndpointStats:
    """One endpoint's attempts in the window, as the dashboard counts them, and its deliveries' states."""
    since = window_start(window, now)
    row = rollup_rows(None, window, now, endpoint_id=endpoint.pk).aggregate(**counter_sums())
    counts = Counts.from_row(row)
    deliveries = Delivery.objects.filter(endpoint=endpoint)
    return EndpointStats(
        window_seconds=int(window.length.total_seconds()),
        since=since,
        attempts=counts.attempts,
        by_outcome={
            AttemptOutcome.SUCCESS: counts.successes,
            AttemptOutcome.RETRY: counts.retries,
            AttemptOutcome.FAIL: counts.failures,
        },
        success_rate=None if counts.success_rate is None else round(counts.success_rate, 4),
        latency_p50_ms=counts.percentile(0.50),
        latency_p95_ms=counts.percentile(0.95),
        pending_deliveries=deliveries.filter(status=DeliveryStatus.PENDING).count(),
        failed_deliveries=deliveries.filter(status=DeliveryStatus.FAILED, created_at__gte=since).count(),
    )
