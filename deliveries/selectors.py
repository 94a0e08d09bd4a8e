"""Reads of deliveries for the entry points (admin, API, dashboard)."""

import logging
from dataclasses import dataclass
from datetime import datetime

from deliveries.models import Delivery, EndpointSchedule
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
