"""The sweeper: hands every due, unowned delivery to the broker again. The database is the truth."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services.dispatch import hand_off
from webhookhub.conf import setting


def sweep_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Lease up to ``limit`` due deliveries to the broker and enqueue them; returns how many.

    Rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL), so
    several sweepers never hand over the same delivery twice.
    """
    now = now or timezone.now()
    limit = setting("SWEEP_LIMIT") if limit is None else limit
    lease_until = now + timedelta(seconds=setting("QUEUE_LEASE_SECONDS"))
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                Q(lease_until__isnull=True) | Q(lease_until__lt=now),
                status=DeliveryStatus.PENDING,
                next_attempt_at__lte=now,
            )
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(lease_until=lease_until)
    if ids:
        hand_off([(ids, lease_until)])
    return len(ids)
