"""The sweeper: rings the workers for every due delivery nobody owns. The database is the truth.

Covers a doorbell lost with the broker or the publishing process, a worker killed
mid-send (its lease runs out), and every scheduled retry.
"""

from datetime import datetime
from math import ceil

from django.db.models import Q
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services.dispatch import ring_now
from webhookhub.conf import setting


def due_unowned(now: datetime):
    return Delivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    )


def sweep_due(*, now: datetime | None = None) -> int:
    """Ring one drain per batch of due, unowned deliveries (bounded); returns how many rings were sent."""
    now = now or timezone.now()
    batch = setting("DRAIN_BATCH_SIZE")
    most = setting("SWEEP_MAX_DOORBELLS")
    waiting = len(due_unowned(now).values_list("pk", flat=True)[: batch * most])
    return ring_now(ceil(waiting / batch)) if waiting else 0
