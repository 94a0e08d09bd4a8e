"""The sweeper: rings the workers for every due delivery nobody owns. The database is the truth.

Covers a doorbell lost with the broker or the publishing process, a worker killed
mid-send (its lease runs out), and every scheduled retry. Celery beat asks for a sweep
every interval, and so does a ticker thread in every worker process (so retries go out
while beat is down); ``take_sweep_turn`` lets one of them sweep per interval.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from django.db.models.functions import Now
from django.utils import timezone

from deliveries.models import Delivery, SweepTurn
from deliveries.numbers.maintenance import prune_rollups
from deliveries.services.doorbell import ring_now
from deliveries.services.retention import forget_idle_keys, purge, retention_cutoff
from events.triggers import prune_trigger_requests
from ground.conf import setting

_TURN = "sweep"
# A turn lasts a little less than an interval, so a sweeper ticking exactly once an interval
# (beat) is never skipped for arriving a few milliseconds early.
_TURN_FRACTION = 0.8
# Retention purges for at most this share of a sweep interval per turn.
PURGE_SHARE = 0.25


@dataclass(frozen=True)
class SweepResult:
    due: int  # due deliveries nobody owns, counted up to DRAIN_BATCH_SIZE x SWEEP_MAX_DOORBELLS
    rings: int  # drain messages the broker took


def sweep_due(*, now: datetime | None = None) -> SweepResult:
    """Ring one drain per batch of due, unowned deliveries (bounded)."""
    now = now or timezone.now()
    batch = setting("DRAIN_BATCH_SIZE")
    most = setting("SWEEP_MAX_DOORBELLS")
    due = len(Delivery.objects.due_unowned(now).values_list("pk", flat=True)[: batch * most])
    return SweepResult(due=due, rings=ring_now(ceil(due / batch)) if due else 0)


def take_sweep_turn(*, interval: float) -> bool:
    """True for the one caller per interval, across all processes and hosts, that should sweep now.

    Uses the database's clock, so hosts whose clocks disagree still take turns.
    """
    turn = timedelta(seconds=interval * _TURN_FRACTION)
    if SweepTurn.objects.filter(name=_TURN, next_sweep_at__lte=Now()).update(next_sweep_at=Now() + turn):
        return True
    _, created = SweepTurn.objects.get_or_create(name=_TURN, defaults={"next_sweep_at": timezone.now() + turn})
    return created


def sweep() -> SweepResult | None:
    """Prune old rows, ring for due work and purge expired events (a quarter of an interval at most),
    unless another process swept less than an interval ago (then None)."""
    interval = float(setting("SWEEP_INTERVAL_SECONDS"))
    if not take_sweep_turn(interval=interval):
        return None
    now = timezone.now()
    prune_rollups(now=now)
    prune_trigger_requests(now=now)
    result = sweep_due(now=now)
    # Retention keeps up with ingest (measured: bench/operations/) in batches of short transactions.
    cutoff = retention_cutoff(now=now, days=setting("RETENTION_DAYS"))
    purge(before=cutoff, max_seconds=interval * PURGE_SHARE)
    forget_idle_keys(before=cutoff)
    return result
