"""Keeping the numbers: pruning old rollup buckets, and rebuilding rollups and health from the attempt log."""

from datetime import datetime, timedelta
from time import monotonic

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliveries.models import Attempt, AttemptRollup, Granularity
from deliveries.numbers.tallying import RollupKey, Tally, add_to_rollups, bucket_start, tally
from deliveries.services.recording import requests_seen
from subscriptions.health import record_requests
from subscriptions.models import EndpointHealth

FINE_ROLLUPS_KEPT = timedelta(days=2)
HOURLY_ROLLUPS_KEPT = timedelta(days=90)
_COUNTED = ("delivery", "number", "started_at", "duration_ms", "status_code", "error", "outcome", "request_made")
_PRUNE_EVERY_SECONDS = 600.0
_last_prune = 0.0


def prune_rollups(*, now: datetime, force: bool = False) -> int:
    """Delete five-minute buckets older than two days and hourly ones older than 90 days.

    At most every ten minutes per process; returns how many rows went.
    """
    global _last_prune
    if not force and monotonic() - _last_prune < _PRUNE_EVERY_SECONDS:
        return 0
    _last_prune = monotonic()
    old = Q(granularity=Granularity.FIVE_MINUTES, bucket_start__lt=now - FINE_ROLLUPS_KEPT) | Q(
        granularity=Granularity.HOUR, bucket_start__lt=now - HOURLY_ROLLUPS_KEPT
    )
    deleted, _ = AttemptRollup.objects.filter(old).delete()
    return deleted


@transaction.atomic
def rebuild_stats(*, chunk: int = 20_000) -> int:
    """Recompute every rollup and health row from the attempts (after a bulk import; workers stopped).

    The auto-disable clocks that were running are kept (the attempts cannot tell when an admin
    re-enabled); an endpoint found failing without one starts its clock now.
    """
    clocks = list(EndpointHealth.objects.filter(failing_since__isnull=False).values_list("pk", "failing_since"))
    AttemptRollup.objects.all().delete()
    EndpointHealth.objects.all().delete()
    attempts = (
        Attempt.objects.select_related("delivery__endpoint")
        .only(*_COUNTED, "delivery__endpoint_id", "delivery__endpoint__tenant_id")
        .order_by("started_at", "id")
    )
    tallies: dict[RollupKey, tuple[str, Tally]] = {}
    batch: list[Attempt] = []
    count = 0
    for attempt in attempts.iterator(chunk_size=chunk):
        count += 1
        batch.append(attempt)
        if len(batch) == chunk:
            _merge(tallies, tally((a.delivery.endpoint.tenant_id, a) for a in batch))
            _rebuild_health(batch)
            batch = []
    _merge(tallies, tally((a.delivery.endpoint.tenant_id, a) for a in batch))
    _rebuild_health(batch)
    recent = bucket_start(timezone.now() - FINE_ROLLUPS_KEPT, Granularity.FIVE_MINUTES)
    keys = sorted(key for key in tallies if key[1] != Granularity.FIVE_MINUTES or key[2] >= recent)
    for start in range(0, len(keys), 500):
        add_to_rollups({key: tallies[key] for key in keys[start : start + 500]})
    for endpoint_id, failing_since in clocks:
        EndpointHealth.objects.filter(pk=endpoint_id, failed_in_a_row__gt=0).update(failing_since=failing_since)
    return count


def _rebuild_health(attempts: list[Attempt]) -> None:
    """Health from old attempts, leaving the auto-disable clocks alone (``rebuild_stats`` restores them)."""
    record_requests(requests_seen([attempt for attempt in attempts if attempt.request_made]), now=timezone.now())


def _merge(into: dict[RollupKey, tuple[str, Tally]], more: dict[RollupKey, tuple[str, Tally]]) -> None:
    for key, (tenant_id, counts) in more.items():
        if key in into:
            into[key][1].merge(counts)
        else:
            into[key] = (tenant_id, counts)
