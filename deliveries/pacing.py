"""Per-endpoint scheduling decisions: pure functions over one endpoint's state, table-tested.

The unit of scheduling is the endpoint. One worker process at a time owns an endpoint
(``deliveries.services.claims`` keeps who, in the database). The owner leases a
bounded number of the endpoint's due deliveries ahead (``budget``) and starts them at the
endpoint's pace (``Pacer``): below ``max_in_flight`` requests open, within
``rate_limit_per_s``, not while a ``Retry-After`` pause runs, and only one probe at a time
while its circuit is open. What cannot go soon stays pending in the database, unclaimed:
no attempt is recorded and no retry is used.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

CIRCUIT_THRESHOLD = 5  # consecutive failures (refused, timed out, 5xx) that open the circuit
PROBE_BACKOFF_SECONDS = (5, 10, 20, 40, 60)  # between probes while the circuit is open; the last repeats
AHEAD_PER_SLOT = 4  # an owner leases at most this many deliveries per slot of max_in_flight ahead of sending
RATE_AHEAD_SECONDS = 1.0  # ... and, for a rate-limited endpoint, at most what its rate starts in this long


@dataclass(frozen=True)
class EndpointState:
    """What the owner knows of an endpoint when it decides how much more to lease."""

    held: int  # deliveries the owner leased and has not had answered yet (waiting or in flight)
    max_in_flight: int  # requests it may have open at once now: the endpoint's, or below it the learnt limit
    rate_limit_per_s: int | None
    paused_until: datetime | None
    circuit_open: bool
    next_probe_at: datetime | None


@dataclass(frozen=True)
class Budget:
    count: int = 0  # how many more of the endpoint's due deliveries to lease now
    wake_at: datetime | None = None  # when a limit of time (pause, probe) lets some go


def budget(state: EndpointState, *, now: datetime, want: int) -> Budget:
    """How many more of its due deliveries the endpoint's owner may lease now (at most ``want``)."""
    if state.paused_until is not None and state.paused_until > now:
        return Budget(wake_at=state.paused_until)
    if state.circuit_open:
        if state.held:
            return Budget()  # the probe is out
        if state.next_probe_at is not None and state.next_probe_at > now:
            return Budget(wake_at=state.next_probe_at)
        return Budget(count=min(1, want))
    return Budget(count=max(0, min(lease_ahead(state.max_in_flight, state.rate_limit_per_s) - state.held, want)))


def lease_ahead(max_in_flight: int, rate_limit_per_s: int | None) -> int:
    """How many of an endpoint's deliveries its owner may hold (leased, not yet answered) at once."""
    ahead = max_in_flight * AHEAD_PER_SLOT
    if rate_limit_per_s:
        ahead = min(ahead, max(1, round(rate_limit_per_s * RATE_AHEAD_SECONDS)))
    return ahead


class Pacer:
    """When each of an endpoint's requests may start: ``max_in_flight`` open, ``rate_limit_per_s``.

    Times are plain seconds on one clock (the worker uses ``time.monotonic``). Starts are at
    least ``1 / rate`` apart, so any one-second window holds at most ``rate + 1`` of them.
    """

    def __init__(self, *, max_in_flight: int, rate_limit_per_s: int | None, next_start: float) -> None:
        self.max_in_flight = max_in_flight
        self.rate_limit_per_s = rate_limit_per_s
        self.next_start = next_start  # the rate limit's next free start
        self.in_flight = 0

    def start_at(self, now: float) -> float | None:
        """When the next request may start (``now`` or later); None while every slot is taken."""
        if self.in_flight >= self.max_in_flight:
            return None
        return max(now, self.next_start) if self.rate_limit_per_s else now

    def start(self, now: float) -> None:
        self.in_flight += 1
        if self.rate_limit_per_s:
            self.next_start = max(now, self.next_start) + 1 / self.rate_limit_per_s

    def finish(self) -> None:
        self.in_flight -= 1


class Signal(Enum):
    """What one attempt says about its endpoint."""

    UP = "up"  # it answered (2xx, or a 3xx/4xx that is not about load)
    DOWN = "down"  # refused, timed out, or 5xx
    PAUSE = "pause"  # 429 or 503 with Retry-After


def signal_of(status_code: int | None, *, has_retry_after: bool) -> Signal:
    if status_code in (429, 503) and has_retry_after:
        return Signal.PAUSE
    if status_code is None or status_code >= 500:
        return Signal.DOWN
    return Signal.UP


@dataclass(frozen=True)
class Health:
    down_in_a_row: int = 0
    circuit_opened_at: datetime | None = None
    next_probe_at: datetime | None = None
    paused_until: datetime | None = None
    pause_reason: str = ""


# What one attempt tells about its endpoint, and when a PAUSE ends.
SignalAt = tuple[Signal, datetime | None]


def after_attempts(health: Health, signals: Iterable[SignalAt], *, now: datetime) -> Health:
    """The endpoint's health after a batch of attempts, in order. A PAUSE carries when it ends."""
    for signal, until in signals:
        if signal is Signal.UP:
            health = replace(health, down_in_a_row=0, circuit_opened_at=None, next_probe_at=None)
        elif signal is Signal.PAUSE:
            if until is not None:  # a pause always says when it ends
                later = until if health.paused_until is None or until > health.paused_until else health.paused_until
                health = replace(health, paused_until=later, pause_reason="Retry-After from the endpoint")
        else:
            failures = health.down_in_a_row + 1
            health = replace(health, down_in_a_row=failures)
            if failures >= CIRCUIT_THRESHOLD:
                step = min(failures - CIRCUIT_THRESHOLD, len(PROBE_BACKOFF_SECONDS) - 1)
                health = replace(
                    health,
                    circuit_opened_at=health.circuit_opened_at or now,
                    next_probe_at=now + timedelta(seconds=PROBE_BACKOFF_SECONDS[step]),
                )
    return health


def stops_sending(health: Health, signal: Signal) -> bool:
    """Whether, after this attempt, the owner should start no more of the endpoint's requests
    until the new health is recorded (a pause began, or the circuit opened)."""
    if signal is Signal.PAUSE:
        return True
    return signal is Signal.DOWN and health.down_in_a_row + 1 >= CIRCUIT_THRESHOLD
