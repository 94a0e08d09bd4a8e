"""Reads of deliveries for the entry points (admin, API, dashboard)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min

from deliveries.adaptive import START_LIMIT, Trouble
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from subscriptions.models import Endpoint

logger = logging.getLogger(__name__)

# What cut an endpoint's adaptive limit, as people read it ("limited by: 429s at 7").
LIMITED_BY_WORDS: dict[str, str] = {
    Trouble.TOO_MANY.value: "429s",
    Trouble.UNAVAILABLE.value: "503s",
    Trouble.TIMEOUT.value: "timeouts",
    Trouble.REFUSED.value: "refused connections",
    Trouble.LATENCY.value: "slow answers",
}


def concurrency_text(
    *, adaptive: bool, ceiling: int, limit: int | None, limited_by: str = "", limited_at: int | None = None
) -> str:
    """How many requests the endpoint gets at once and why, in words (API summary, admin, dashboard).

    ``limit`` etc. are the schedule's ``concurrency_*`` as the owner last wrote them (``deliveries.adaptive``);
    a limit above the ceiling (``max_in_flight`` lowered since) counts as the ceiling, as the owner clamps it.
    """
    if not adaptive:
        return f"up to {ceiling} at a time (fixed)"
    if limit is None:
        return f"starts at {min(START_LIMIT, ceiling)} at a time, up to {ceiling}"
    if limit >= ceiling:
        return f"sending up to {ceiling} at a time (its ceiling)"
    if limited_by:
        cause = LIMITED_BY_WORDS.get(limited_by, limited_by)
        return f"sending {limit} at a time, limited by: {cause}" + ("" if limited_at is None else f" at {limited_at}")
    return f"ramping up: {limit} at a time of up to {ceiling}"


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
    adaptive: bool  # Endpoint.adaptive_concurrency: the limit adapts to the answers, under max_in_flight
    concurrency_limit: int | None  # as the owner last wrote it; None: not learnt yet (starts at START_LIMIT)
    limited_by: str  # what last cut it ("429", "503", "timeout", "refused", "latency"), "" if nothing holds it
    limited_at: int | None  # requests open when that answer came

    @property
    def concurrency(self) -> str:
        return concurrency_text(
            adaptive=self.adaptive,
            ceiling=self.max_in_flight,
            limit=self.concurrency_limit,
            limited_by=self.limited_by,
            limited_at=self.limited_at,
        )

    @property
    def summary(self) -> str:
        """What holds it back first (an open circuit, a pause), then its deliveries and its concurrency."""
        held = ""
        if self.circuit_open_since is not None:
            held = f"circuit open since {self.circuit_open_since:%Y-%m-%d %H:%M:%S} UTC"
            if self.next_probe_at is not None:
                held += f", next probe {self.next_probe_at:%H:%M:%S} UTC"
        elif self.paused_until is not None:
            held = f"paused until {self.paused_until:%Y-%m-%d %H:%M:%S} UTC ({self.pause_reason})"
        parts = [held, f"{self.leased} being sent, {self.pending} pending", self.concurrency]
        return "; ".join(part for part in parts if part)


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
        adaptive=endpoint.adaptive_concurrency,
        concurrency_limit=schedule.concurrency_limit,
        limited_by=schedule.concurrency_limited_by,
        limited_at=schedule.concurrency_limited_at,
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
