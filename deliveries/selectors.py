"""Reads of deliveries for the entry points (admin, API, dashboard)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from subscriptions.models import Endpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulingState:
    """What an endpoint's scheduling looks like now (API, admin and dashboard show it)."""

    leased: int  # leased by the worker that owns it now: being sent, or next in line
    pending: int  # its deliveries waiting to be sent: due now or retrying later
    max_in_flight: int
    rate_limit_per_s: int | None
    paused_until: datetime | None
    pause_reason: str
    circuit_open_since: datetime | None
    next_probe_at: datetime | None
    down_in_a_row: int

    @property
    def summary(self) -> str:
        if self.circuit_open_since is not None:
            return f"circuit open since {self.circuit_open_since:%Y-%m-%d %H:%M:%S} UTC"
        if self.paused_until is not None:
            return f"paused until {self.paused_until:%Y-%m-%d %H:%M:%S} UTC ({self.pause_reason})"
        return f"{self.leased} being sent (up to {self.max_in_flight} at once), {self.pending} pending"


def scheduling_state(endpoint: Endpoint, *, now: datetime) -> SchedulingState:
    schedule = EndpointSchedule.objects.filter(endpoint=endpoint).first() or EndpointSchedule(endpoint=endpoint)
    pending = Delivery.objects.filter(endpoint=endpoint).pending()
    paused = schedule.paused_until if schedule.paused_until and schedule.paused_until > now else None
    return SchedulingState(
        leased=pending.in_flight(now).count(),
        pending=pending.count(),
        max_in_flight=endpoint.max_in_flight,
        rate_limit_per_s=endpoint.rate_limit_per_s,
        paused_until=paused,
        pause_reason=schedule.pause_reason if paused else "",
        circuit_open_since=schedule.circuit_opened_at,
        next_probe_at=schedule.next_probe_at if schedule.circuit_opened_at else None,
        down_in_a_row=schedule.down_in_a_row,
    )


def held_back_by(delivery: Delivery, *, now: datetime) -> Delivery | None:
    """The delivery this pending keyed one waits for (``deliveries.services.ordering``): the earliest pending
    one before it with its key, else the one of its key being sent; None if it waits for none."""
    if delivery.ordering_key is None or delivery.status != DeliveryStatus.PENDING or not delivery.endpoint.ordered:
        return None
    same_key = (
        Delivery.objects.pending()
        .filter(endpoint_id=delivery.endpoint_id, ordering_key=delivery.ordering_key)
        .exclude(pk=delivery.pk)
    )
    ahead = same_key.filter(sequence__lt=delivery.sequence).order_by("sequence").first()
    return ahead if ahead is not None else same_key.in_flight(now).order_by("sequence").first()


@dataclass(frozen=True)
class BlockedKey:
    """An ordering key whose oldest pending delivery has waited long, with others of the key behind it."""

    endpoint_id: str
    key: str
    waiting: int  # pending deliveries of the key, the one they wait for included
    since: datetime  # when the oldest of them was published


def blocked_keys(*, now: datetime, older_than_seconds: float, tenant_id: str | None = None) -> list[BlockedKey]:
    """Ordering keys blocked longer than ``older_than_seconds`` (of one tenant, or all), longest first: one
    query over the pending keyed deliveries (their own index)."""
    pending = Delivery.objects.pending().filter(ordering_key__isnull=False)
    if tenant_id is not None:
        pending = pending.filter(endpoint__tenant_id=tenant_id)
    groups = (
        pending.values("endpoint_id", "ordering_key")
        .annotate(waiting=Count("id"), since=Min("created_at"))
        .filter(waiting__gt=1, since__lt=now - timedelta(seconds=older_than_seconds))
        .order_by("since")
    )
    return [BlockedKey(g["endpoint_id"], g["ordering_key"], g["waiting"], g["since"]) for g in groups]
