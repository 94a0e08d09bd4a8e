"""The endpoints a worker process owns, as lanes: each holds its leased deliveries until its pace lets them start.

In memory only, thread-safe, and with the clock passed in, so it is tested with a fake clock.
A lane starts a delivery when its ``Pacer`` allows (its concurrency limit open, ``rate_limit_per_s``)
and a sender thread is free, the lanes taking turns. The limit is the endpoint's ``max_in_flight``, or below
it what adaptive concurrency (``deliveries.adaptive``) has learnt from the endpoint's answers. An answer
that pauses the endpoint or opens its circuit stops the lane at once: what waited in it is handed back
(``take_unsent``) to wait in the database again. A lane with nothing left to record is idle; after
``IDLE_LANE_SECONDS`` its endpoint is handed back (``give_up_idle``).
"""

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from deliveries.adaptive import Answer, ConcurrencyLimit, Ticket
from deliveries.models import Delivery
from deliveries.pacing import Health, Pacer, Signal, stops_sending
from deliveries.services.claims import ConcurrencyState, EndpointClaim
from deliveries.services.sending import Batch

IDLE_LANE_SECONDS = 0.1  # an endpoint with nothing leased is kept this long for its next delivery, then handed back
START_EARLY_SECONDS = 0.002  # a paced start this close is made now (its successor keeps the spacing)

Start = tuple[Delivery, Batch]


@dataclass
class Lane:
    """An endpoint this process owns: its leased deliveries waiting to start, and its pace."""

    pacer: Pacer
    down_in_a_row: int  # requests in a row that found the endpoint down, as far as this process knows
    concurrency: ConcurrencyLimit | None  # None: the endpoint does not adapt (its max_in_flight is the limit)
    written: ConcurrencyState | None  # the concurrency as the schedule row holds it
    tickets: dict[int, Ticket] = field(default_factory=dict)  # of the requests in flight
    waiting: deque[Start] = field(default_factory=deque)
    unrecorded: int = 0  # leased and not yet recorded: waiting, in flight or answered
    blocking: set[int] = field(default_factory=set)  # deliveries whose answer stopped the lane, until recorded
    idle_since: float | None = None  # when its last leased delivery was recorded

    @property
    def held(self) -> int:
        """Leased and not answered yet: what counts against what the endpoint may have leased."""
        return len(self.waiting) + self.pacer.in_flight

    def next_free_start(self, now: float) -> float | None:
        """Seconds from ``now`` to its rate limit's next free start (None without a rate limit)."""
        return max(0.0, self.pacer.next_start - now) if self.pacer.rate_limit_per_s else None

    def unwritten_concurrency(self) -> ConcurrencyState | None:
        """The learnt concurrency, if the schedule row does not hold it yet."""
        state = self.concurrency.state if self.concurrency is not None else None
        return state if state != self.written else None


class Lanes:
    def __init__(self, *, senders: int, clock: Callable[[], float]) -> None:
        self.senders = senders  # sender threads: at most this many requests open in all
        self.clock = clock
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when deliveries are recorded
        self._lanes: dict[str, Lane] = {}
        self._sending = 0
        self._unrecorded = 0  # leased and not yet recorded, all lanes
        self._held: dict[int, Delivery] = {}  # the same deliveries: their leases are renewed
        self._unsent: list[Delivery] = []  # taken out of a stopped lane: their leases are given back
        self.next_start_at: float | None = None  # a rate-limited lane's next start
        self.give_up_at: float | None = None  # an idle lane's time is up then

    # --- what a claim needs to know ---------------------------------------------------------------
    def unrecorded(self) -> int:
        with self.lock:
            return self._unrecorded

    def held_by_endpoint(self) -> tuple[dict[str, int], set[str]]:
        """Per endpoint, its deliveries waiting or in flight; and the endpoints stopped until an answer is recorded."""
        with self.lock:
            held = {endpoint_id: lane.held for endpoint_id, lane in self._lanes.items()}
            return held, {endpoint_id for endpoint_id, lane in self._lanes.items() if lane.blocking}

    def limits(self) -> dict[str, int]:
        """Per endpoint owned, how many of its requests may be open at once now."""
        with self.lock:
            return {endpoint_id: lane.pacer.max_in_flight for endpoint_id, lane in self._lanes.items()}

    def heartbeat(self) -> tuple[list[Delivery], dict[str, ConcurrencyState | None]]:
        """What the heartbeat renews, in one snapshot: the deliveries leased and not yet recorded, and the endpoints
        owned, each with its learnt concurrency if the schedule does not hold it yet (else None)."""
        with self.lock:
            owned = {endpoint_id: lane.unwritten_concurrency() for endpoint_id, lane in self._lanes.items()}
            return list(self._held.values()), owned

    def concurrency_written(self, written: dict[str, ConcurrencyState]) -> None:
        """The schedule holds these now (the heartbeat wrote them)."""
        with self.lock:
            for endpoint_id, state in written.items():
                if (lane := self._lanes.get(endpoint_id)) is not None:
                    lane.written = state

    # --- claimed, started, answered, recorded ------------------------------------------------------
    def add(self, claims: list[EndpointClaim], batch: Batch, *, wall_now: datetime) -> list[Start]:
        """Take a claim's deliveries into their lanes (a lane per newly owned endpoint); returns what may start now.

        ``wall_now``: the wall-clock time of the claim, against which the last owner's next free start is read.
        """
        by_endpoint = {claim.endpoint.pk: claim for claim in claims}
        deliveries = batch.to_send + batch.cancelled
        with self.lock:
            self._unrecorded += len(deliveries)
            self._held.update((delivery.pk, delivery) for delivery in deliveries)
            for delivery in deliveries:
                lane = self._lane(by_endpoint[delivery.endpoint_id], wall_now)
                lane.unrecorded += 1
                lane.idle_since = None
            for delivery in batch.to_send:
                lane = self._lanes[delivery.endpoint_id]
                if lane.blocking:  # it stopped while this claim ran: these wait in the database
                    self._unsent.append(delivery)
                else:
                    lane.waiting.append((delivery, batch))
            return self._next_starts()

    def answered(self, delivery: Delivery, signal: Signal | None, answer: Answer | None = None) -> list[Start]:
        """A request is over (``signal``: what it said of its endpoint, None if none was made; ``answer``: its
        status and time, for adaptive concurrency): free its slot, move the lane's concurrency limit, stop the
        lane if the answer says so; returns what may start now."""
        with self.lock:
            self._sending -= 1
            lane = self._lanes.get(delivery.endpoint_id)  # gone only if the worker closed without it
            if lane is not None:
                ticket = lane.tickets.pop(delivery.pk, None)
                if lane.concurrency is not None and ticket is not None and answer is not None:
                    lane.concurrency.answered(ticket, answer, open_now=lane.pacer.in_flight)
                    lane.pacer.max_in_flight = lane.concurrency.limit
                lane.pacer.finish()
                if signal is not None:
                    if stops_sending(Health(down_in_a_row=lane.down_in_a_row), signal):
                        lane.blocking.add(delivery.pk)
                        self._unsent += [waiting for waiting, _batch in lane.waiting]
                        lane.waiting.clear()
                    lane.down_in_a_row = 0 if signal is Signal.UP else lane.down_in_a_row + (signal is Signal.DOWN)
            return self._next_starts()

    def starts_due(self) -> list[Start]:
        """What the pace lets start now (a rate-limited lane's time came)."""
        with self.lock:
            return self._next_starts()

    def recorded(self, deliveries: list[Delivery]) -> None:
        """These are recorded (or back in the database unsent): no longer this process's."""
        now = self.clock()
        with self.lock:
            for delivery in deliveries:
                self._held.pop(delivery.pk, None)
                lane = self._lanes.get(delivery.endpoint_id)
                if lane is None:  # the worker closed without it
                    continue
                lane.unrecorded -= 1
                lane.blocking.discard(delivery.pk)
                if not lane.unrecorded:
                    lane.idle_since = now
                    give_up_at = now + IDLE_LANE_SECONDS
                    self.give_up_at = give_up_at if self.give_up_at is None else min(self.give_up_at, give_up_at)
            self._unrecorded -= len(deliveries)
            self.changed.notify_all()

    def take_unsent(self) -> list[Delivery]:
        """The deliveries stopped lanes will not send (their leases are to be given back)."""
        with self.lock:
            unsent, self._unsent = self._unsent, []
            return unsent

    def give_up_idle(self, *, closing: bool = False) -> dict[str, Lane]:
        """Remove and return the lanes idle for ``IDLE_LANE_SECONDS`` (closing: every lane)."""
        with self.lock:
            now = self.clock()
            idle = {
                endpoint_id: lane
                for endpoint_id, lane in self._lanes.items()
                if closing or (lane.idle_since is not None and now >= lane.idle_since + IDLE_LANE_SECONDS)
            }
            for endpoint_id in idle:
                del self._lanes[endpoint_id]
            later = [
                lane.idle_since + IDLE_LANE_SECONDS for lane in self._lanes.values() if lane.idle_since is not None
            ]
            self.give_up_at = min(later, default=None)
            return idle

    def wait_recorded(self, timeout: float) -> bool:
        """Wait until everything leased has been recorded (or handed back)."""
        with self.lock:
            return self.changed.wait_for(lambda: self._unrecorded <= 0, timeout=timeout)

    # --- under the lock -------------------------------------------------------------------------------
    def _lane(self, claim: EndpointClaim, wall_now: datetime) -> Lane:
        """The endpoint's lane, with its limits as just read (an admin may have changed them)."""
        endpoint = claim.endpoint
        lane = self._lanes.get(endpoint.pk)
        if lane is None:
            next_start = self.clock()
            if claim.next_start_at is not None:  # where the last owner left the rate limit
                next_start += max(0.0, (claim.next_start_at - wall_now).total_seconds())
            pacer = Pacer(max_in_flight=endpoint.max_in_flight, rate_limit_per_s=None, next_start=next_start)
            lane = self._lanes[endpoint.pk] = Lane(
                pacer=pacer, down_in_a_row=claim.down_in_a_row, concurrency=None, written=claim.concurrency
            )
        if not endpoint.adaptive_concurrency:
            lane.concurrency = None
        elif lane.concurrency is None:  # where the last owner (or this one, before adapting was off) left it
            limit, limited_by, limited_at = claim.concurrency
            lane.concurrency = ConcurrencyLimit(
                ceiling=endpoint.max_in_flight, limit=limit, limited_by=limited_by, limited_at=limited_at
            )
        else:
            lane.concurrency.set_ceiling(endpoint.max_in_flight)
        lane.pacer.max_in_flight = lane.concurrency.limit if lane.concurrency is not None else endpoint.max_in_flight
        lane.pacer.rate_limit_per_s = endpoint.rate_limit_per_s
        return lane

    def _next_starts(self) -> list[Start]:
        """The waiting deliveries that may start now, the lanes taking turns for the sender threads."""
        now = self.clock()
        starts: list[Start] = []
        self.next_start_at = None
        progressed = True
        while progressed and self._sending < self.senders:
            progressed = False
            for lane in self._lanes.values():
                if not lane.waiting or lane.blocking or self._sending >= self.senders:
                    continue
                start_at = lane.pacer.start_at(now)
                if start_at is None:
                    continue  # every slot taken: an answer frees one
                if start_at > now + START_EARLY_SECONDS:
                    self.next_start_at = start_at if self.next_start_at is None else min(self.next_start_at, start_at)
                    continue
                lane.pacer.start(now)
                self._sending += 1
                start = lane.waiting.popleft()
                if lane.concurrency is not None:
                    lane.tickets[start[0].pk] = lane.concurrency.started(lane.pacer.in_flight)
                starts.append(start)
                progressed = True
        return starts
