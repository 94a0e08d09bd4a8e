"""The worker's sending pipeline: owns endpoints, leases their due deliveries and starts them at their pace.

Inside each worker process:

- claims go through ``deliveries.services.scheduling``: round robin over endpoints with
  due work. The process becomes the owner of each endpoint it leases deliveries of, and
  no other worker schedules that endpoint until it gives it back (once everything it
  leased for it is recorded) or its ownership lapses (the process died). It leases a
  few deliveries per slot of the endpoint's ``max_in_flight`` ahead, and none while the
  endpoint is paused by a ``Retry-After`` or behind an open circuit (then one probe);
- each owned endpoint is a lane: its leased deliveries wait in memory and start as its
  ``Pacer`` allows (``max_in_flight`` open, ``rate_limit_per_s``), lanes taking turns for
  the ``SEND_CONCURRENCY`` sender threads, over pooled keep-alive connections. The limits
  are the owner's own counters, and the owner is the only one sending, so they hold for
  the whole cluster;
- an answer that pauses the endpoint or opens its circuit stops its lane at once: what
  waited in it is given back to the database unsent (no attempt, no retry used);
- one recorder thread writes results in bulk (the attempts of many sends, their delivery
  states, rollups and endpoints' health in one transaction), then gives back idle endpoints. While the
  database is unreachable it keeps the batch and tries again, so a PostgreSQL restart
  costs no result and no duplicate send. When results come in it first claims again, so
  a lane is refilled before it runs dry;
- the same thread renews the send leases and the ownership of everything this process
  holds every third of a lease (a heartbeat), so neither runs out while it is alive.

If the process dies, what it had claimed but not recorded is re-sent when the send
lease runs out, within ``SEND_LEASE_SECONDS`` (at least once; receivers dedupe on
``webhook-id``); its endpoints' ownership lapses at the same time.
"""

import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.scheduling import Health, Pacer, Signal, lease_ahead, stops_sending
from deliveries.services.recording import Recorded, decide_results, write
from deliveries.services.scheduling import Claimed, EndpointClaim, give_up_ownership, renew_ownership
from deliveries.services.sending import (
    Batch,
    SendResult,
    claim,
    not_sent,
    prepare,
    release_leases,
    renew_leases,
    send_one,
    signal_of_sent,
)
from ground.conf import webhookhub_settings
from ground.db import DATABASE_UNAVAILABLE, database_reachable, refresh_connections

logger = logging.getLogger(__name__)

_RECORD_BATCH = 500
_HELD_PER_THREAD = 4  # a process leases at most this many deliveries per sender thread
_RECORD_RETRY_MAX_SECONDS = 2.0  # longest wait between two tries of a batch while the database is down
_RECORD_TRIES_WHILE_REACHABLE = 3  # a batch that fails this often with the database up is written row by row
_IDLE_POLL_SECONDS = 0.5  # how soon an idle recorder notices it should stop, or claim again
_START_EARLY_SECONDS = 0.002  # a paced start this close is made now (its successor keeps the spacing)
_IDLE_LANE_SECONDS = 0.1  # an endpoint with nothing leased is kept this long for its next delivery, then handed back
_IDLE_LANE_POLL_SECONDS = 0.005  # meanwhile its owner looks this often for what was published for it


@dataclass
class _Lane:
    """An endpoint this process owns: its leased deliveries waiting to start, and its pace."""

    pacer: Pacer
    failures: int  # consecutive failures, as far as this process knows
    waiting: deque[tuple[Delivery, Batch]] = field(default_factory=deque)
    unrecorded: int = 0  # leased and not yet recorded: waiting, in flight or answered
    blocking: set[int] = field(default_factory=set)  # deliveries whose answer stopped the lane, until recorded
    idle_since: float | None = None  # when its last leased delivery was recorded

    @property
    def held(self) -> int:
        """Leased and not answered yet: what counts against what the endpoint may have leased."""
        return len(self.waiting) + self.pacer.in_flight

    @property
    def full(self) -> bool:
        return self.held >= lease_ahead(self.pacer.max_in_flight, self.pacer.rate_limit_per_s)


class Pipeline:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._size = config["SEND_CONCURRENCY"]
        self._lease = config["SEND_LEASE_SECONDS"]
        self._renew_every = self._lease / 3
        self._renew_at = time.monotonic() + self._renew_every
        self._executor = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix="webhookhub-send")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._claim_lock = threading.Lock()  # one claim round at a time; lanes are added and given up under it
        self._lanes: dict[str, _Lane] = {}
        self._sending = 0  # sender threads busy
        self._unrecorded = 0  # leased and not yet recorded, all lanes
        self._held: dict[int, Delivery] = {}  # the same deliveries: their leases are renewed
        self._unsent: list[Delivery] = []  # taken out of a stopped lane: their leases are given back
        self._claim_again_at: float | None = None  # a limit of time (pause, probe) lets more go then
        self._start_at: float | None = None  # a rate-limited lane's next start
        self._give_up_at: float | None = None  # an idle lane's time is up then
        self._poll_at = 0.0  # while a lane is idle: when its owner next looks for new work
        self._database_down = False
        self._results: queue.Queue[tuple[list[SendResult], list[Delivery]]] = queue.Queue()
        self._closing = threading.Event()
        self._recorder = threading.Thread(target=self._record_forever, name="webhookhub-recorder", daemon=True)
        self._recorder.start()

    def drain(self, max_seconds: float) -> tuple[int, bool]:
        """Claim round after round until nothing more can go now or time is up; (claimed, more left)."""
        deadline = time.monotonic() + max_seconds
        total = 0
        while True:
            claimed, asked = self.claim_once()
            total += claimed
            if claimed < asked or not asked:
                return total, False
            if time.monotonic() > deadline:
                return total, True

    def claim_once(self) -> tuple[int, int]:
        """One claim round for this process's free room, started at once; (claimed, room asked for)."""
        with self._claim_lock:
            with self._lock:
                room = min(self._size * _HELD_PER_THREAD - self._unrecorded, self.config["DRAIN_BATCH_SIZE"])
                held = {endpoint_id: lane.held for endpoint_id, lane in self._lanes.items()}
                # Endpoints to leave out: stopped until their answer is recorded, or holding all they may.
                skip = {endpoint_id for endpoint_id, lane in self._lanes.items() if lane.blocking or lane.full}
            if room <= 0:
                return 0, 0  # room frees up as results are recorded, and the recorder claims again
            now = timezone.now()
            deliveries, claimed = claim(
                owner=self.owner, now=now, lease_seconds=self._lease, capacity=room, held=held, skip=skip
            )
            self._remember_limits(claimed)
            if not deliveries:
                return 0, room
            batch = prepare(deliveries, now)
            claims = {endpoint_claim.endpoint.pk: endpoint_claim for endpoint_claim in claimed.endpoints}
            with self._lock:
                self._unrecorded += len(deliveries)
                self._held.update((delivery.pk, delivery) for delivery in deliveries)
                for delivery in deliveries:
                    lane = self._lane(claims[delivery.endpoint_id])
                    lane.unrecorded += 1
                    lane.idle_since = None
                for delivery in batch.to_send:
                    lane = self._lanes[delivery.endpoint_id]
                    if lane.blocking:  # it stopped while this claim ran: these wait in the database
                        self._unsent.append(delivery)
                    else:
                        lane.waiting.append((delivery, batch))
                starts = self._next_starts()
            if batch.cancelled:
                self._results.put(([], batch.cancelled))
            self._start(starts)
            return len(deliveries), room

    def _lane(self, endpoint_claim: EndpointClaim) -> _Lane:
        """The endpoint's lane, with its limits as just read (an admin may have changed them)."""
        endpoint = endpoint_claim.endpoint
        lane = self._lanes.get(endpoint.pk)
        if lane is None:
            next_start = time.monotonic()
            if endpoint_claim.next_start_at is not None:  # where the last owner left the rate limit
                next_start += max(0.0, (endpoint_claim.next_start_at - timezone.now()).total_seconds())
            pacer = Pacer(
                max_in_flight=endpoint.max_in_flight, rate_limit_per_s=endpoint.rate_limit_per_s, next_start=next_start
            )
            lane = self._lanes[endpoint.pk] = _Lane(pacer=pacer, failures=endpoint_claim.consecutive_failures)
        lane.pacer.max_in_flight, lane.pacer.rate_limit_per_s = endpoint.max_in_flight, endpoint.rate_limit_per_s
        return lane

    def _remember_limits(self, claimed: Claimed) -> None:
        """When to claim again by itself besides as results come in: when the earliest limit of
        time (pause, probe) runs out."""
        if claimed.wake_at is None:
            self._claim_again_at = None
        else:
            self._claim_again_at = time.monotonic() + max(0.0, (claimed.wake_at - timezone.now()).total_seconds())

    def _next_starts(self) -> list[tuple[Delivery, Batch]]:
        """Under the lock: the waiting deliveries that may start now, the lanes taking turns."""
        now = time.monotonic()
        starts: list[tuple[Delivery, Batch]] = []
        self._start_at = None
        progressed = True
        while progressed and self._sending < self._size:
            progressed = False
            for lane in self._lanes.values():
                if not lane.waiting or lane.blocking or self._sending >= self._size:
                    continue
                start_at = lane.pacer.start_at(now)
                if start_at is None:
                    continue  # every slot taken: an answer frees one
                if start_at > now + _START_EARLY_SECONDS:
                    self._start_at = start_at if self._start_at is None else min(self._start_at, start_at)
                    continue
                lane.pacer.start(now)
                self._sending += 1
                starts.append(lane.waiting.popleft())
                progressed = True
        return starts

    def _start(self, starts: list[tuple[Delivery, Batch]]) -> None:
        for delivery, batch in starts:
            self._executor.submit(self._send, delivery, batch).add_done_callback(self._sent)

    def _send(self, delivery: Delivery, batch: Batch) -> SendResult:
        try:
            return send_one(delivery, batch.secrets[delivery.endpoint_id], self.config)
        except Exception:  # noqa: BLE001 - a bug in one send must not stop the others
            logger.exception("Sending delivery %s failed unexpectedly.", delivery.pk)
            return not_sent(delivery, "internal error in the sender (see the worker log).")

    def _sent(self, future: "Future[SendResult]") -> None:
        """A request is over: free its slot, stop its lane if the answer says so, start what may go next."""
        sent: SendResult = future.result()
        with self._lock:
            self._sending -= 1
            lane = self._lanes.get(sent.delivery.endpoint_id)  # gone only if the pipeline closed without it
            if lane is not None:
                lane.pacer.finish()
            if lane is not None and sent.request_made:
                signal = signal_of_sent(sent)
                if stops_sending(Health(consecutive_failures=lane.failures), signal):
                    lane.blocking.add(sent.delivery.pk)
                    self._unsent += [delivery for delivery, _batch in lane.waiting]
                    lane.waiting.clear()
                lane.failures = 0 if signal is Signal.UP else lane.failures + (signal is Signal.DOWN)
            starts = self._next_starts()
        self._results.put(([sent], []))
        self._start(starts)

    def _record_forever(self) -> None:
        while not self._closing.is_set():
            sent, cancelled = self._next_results()
            if time.monotonic() >= self._renew_at:
                self._renew_leases()
            if sent:
                # Refill the lanes before they run dry, and take what was published for the endpoints
                # this process owns (other workers leave them to it).
                self._claim_again()
            self._give_back_unsent()
            if sent or cancelled:
                self._record(sent, cancelled)
            if self._give_up_at is not None and time.monotonic() >= min(self._give_up_at, self._poll_at):
                # Other workers leave this process's endpoints to it, whoever got the doorbell.
                self._poll_at = time.monotonic() + _IDLE_LANE_POLL_SECONDS
                self._claim_again()
                self._give_up_idle_lanes()
            if self._start_at is not None and time.monotonic() >= self._start_at:
                with self._lock:
                    starts = self._next_starts()
                self._start(starts)
            again_at = self._claim_again_at
            if again_at is not None and time.monotonic() >= again_at:
                self._claim_again()
        connections.close_all()  # this thread's connections

    def _claim_again(self) -> None:
        """Lanes were answered or a limit of time ran out: the endpoints' waiting work may go now."""
        refresh_connections()
        try:
            self.claim_once()
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Claiming failed, database unavailable (%s).", exc)
            self._claim_again_at = time.monotonic() + 1.0
        except Exception:  # noqa: BLE001 - the recorder must outlive any failure
            logger.exception("Claiming failed.")
            self._claim_again_at = time.monotonic() + 1.0

    def _next_results(self) -> tuple[list[SendResult], list[Delivery]]:
        """Up to a batch of results; none if nothing came before the next timed duty is due."""
        idle_lanes_at = None if self._give_up_at is None else min(self._give_up_at, self._poll_at)
        timers = (self._renew_at, self._claim_again_at, self._start_at, idle_lanes_at)
        wake = min(at for at in timers if at is not None)
        try:
            sent, cancelled = self._results.get(timeout=min(_IDLE_POLL_SECONDS, max(0.001, wake - time.monotonic())))
        except queue.Empty:
            return [], []
        sent, cancelled = list(sent), list(cancelled)
        while len(sent) + len(cancelled) < _RECORD_BATCH:
            try:
                more_sent, more_cancelled = self._results.get_nowait()
            except queue.Empty:
                break
            sent += more_sent
            cancelled += more_cancelled
        return sent, cancelled

    def _record(self, sent: list[SendResult], cancelled: list[Delivery]) -> None:
        """Write a batch of results; while the database is unreachable, keep it and try again.

        What the batch writes is decided once, before the first try: a try that failed changed
        nothing, so the one that succeeds writes what a single try would have.
        """
        recorded = decide_results(sent, cancelled, self.config)
        tries_while_reachable, wait = 0, 0.1
        while True:
            if time.monotonic() >= self._renew_at:
                self._renew_leases()  # first, once the database is back: the leases must not run out meanwhile
            refresh_connections()
            try:
                write(recorded)
                break
            except DATABASE_UNAVAILABLE as exc:
                if database_reachable():
                    tries_while_reachable += 1
                    if tries_while_reachable >= _RECORD_TRIES_WHILE_REACHABLE:
                        logger.exception("Recording %d results together keeps failing; one by one.", len(sent))
                        self._record_one_by_one(recorded)
                        break
                elif not self._database_down:
                    logger.warning("Database unavailable (%s); keeping %d results until it is back.", exc, len(sent))
                    self._database_down = True
                time.sleep(wait)
                wait = min(wait * 2, _RECORD_RETRY_MAX_SECONDS)
            except Exception:  # noqa: BLE001 - the recorder must outlive any failure
                logger.exception("Recording %d results together failed; recording them one by one.", len(sent))
                self._record_one_by_one(recorded)
                break
        if self._database_down:
            logger.info("Database reachable again; results recorded.")
            self._database_down = False
        self._forget(recorded.deliveries)

    def _forget(self, deliveries: list[Delivery]) -> None:
        """These are recorded (or back in the database unsent): no longer this process's."""
        now = time.monotonic()
        with self._lock:
            for delivery in deliveries:
                self._held.pop(delivery.pk, None)
                lane = self._lanes.get(delivery.endpoint_id)
                if lane is None:  # the pipeline closed without it
                    continue
                lane.unrecorded -= 1
                lane.blocking.discard(delivery.pk)
                if not lane.unrecorded:
                    lane.idle_since = now
                    give_up_at = now + _IDLE_LANE_SECONDS
                    self._give_up_at = give_up_at if self._give_up_at is None else min(self._give_up_at, give_up_at)
            self._unrecorded -= len(deliveries)
            self._changed.notify_all()

    def _give_back_unsent(self) -> None:
        """Leases of deliveries a stopped lane will not send go back: they wait in the database."""
        with self._lock:
            unsent, self._unsent = self._unsent, []
        if not unsent:
            return
        refresh_connections()
        try:
            release_leases(unsent)
        except DATABASE_UNAVAILABLE as exc:  # their leases run out by themselves
            logger.warning("Giving back %d unsent deliveries failed (%s); their leases will run out.", len(unsent), exc)
        self._forget(unsent)

    def _give_up_idle_lanes(self, *, closing: bool = False) -> None:
        """Endpoints that had nothing leased for a while (or, closing, every endpoint) are handed back,
        so any worker can take their next work."""
        with self._claim_lock:
            with self._lock:
                now = time.monotonic()
                idle = {
                    endpoint_id: lane
                    for endpoint_id, lane in self._lanes.items()
                    if closing or (lane.idle_since is not None and now - lane.idle_since >= _IDLE_LANE_SECONDS)
                }
                for endpoint_id in idle:
                    del self._lanes[endpoint_id]
                later = [
                    lane.idle_since + _IDLE_LANE_SECONDS for lane in self._lanes.values() if lane.idle_since is not None
                ]
                self._give_up_at = min(later, default=None)
            if not idle:
                return
            wall, clock = timezone.now(), time.monotonic()
            next_starts = {
                endpoint_id: wall + timedelta(seconds=lane.pacer.next_start - clock)
                if lane.pacer.rate_limit_per_s
                else None
                for endpoint_id, lane in idle.items()
            }
            refresh_connections()
            try:
                give_up_ownership(owner=self.owner, next_starts=next_starts)
            except DATABASE_UNAVAILABLE as exc:  # ownership lapses by itself with the leases
                logger.warning("Handing back %d endpoints failed (%s); their ownership will lapse.", len(idle), exc)

    def _renew_leases(self) -> None:
        """The heartbeat: extend the leases of everything this process holds, and its endpoints' ownership."""
        with self._lock:
            held = list(self._held.values())
            owned = list(self._lanes)
        self._renew_at = time.monotonic() + self._renew_every
        if not held and not owned:
            return
        refresh_connections()
        now = timezone.now()
        try:
            renew_leases(held, now=now, lease_seconds=self._lease)
            renew_ownership(owner=self.owner, endpoint_ids=owned, until=now + timedelta(seconds=self._lease))
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Renewing %d send leases failed (%s); trying again in 1 s.", len(held), exc)
            self._renew_at = time.monotonic() + 1.0

    def _record_one_by_one(self, recorded: Recorded) -> None:
        """So one bad row (e.g. its endpoint was just deleted) does not cost the others their record."""
        for single in recorded.one_by_one():
            try:
                write(single)
            except Exception:  # noqa: BLE001 - leases still cover these: they are re-sent when they run out
                logger.exception("Recording a result failed.")
                refresh_connections()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything claimed has been sent and recorded."""
        with self._lock:
            return self._changed.wait_for(lambda: self._unrecorded <= 0, timeout=timeout)

    def close(self, timeout: float) -> bool:
        """Finish and record what was claimed (up to ``timeout``), then stop the threads and close
        the recorder's database connection. Returns whether everything was recorded."""
        idle = self.wait_idle(timeout)
        self._closing.set()
        self._recorder.join(timeout=_IDLE_POLL_SECONDS * 4)
        self._executor.shutdown(wait=False)
        self._give_up_idle_lanes(closing=True)  # what is still leased is re-sent when its lease runs out
        return idle


_pipeline: Pipeline | None = None
_pipeline_pid: int | None = None
_pipeline_lock = threading.Lock()


def process_pipeline() -> Pipeline:
    """This process's pipeline, created on first use (after a worker forks)."""
    global _pipeline, _pipeline_pid
    with _pipeline_lock:
        if _pipeline is None or _pipeline_pid != os.getpid():
            _pipeline, _pipeline_pid = Pipeline(webhookhub_settings()), os.getpid()
        return _pipeline


def wait_idle(timeout: float = 10.0) -> bool:
    return _pipeline.wait_idle(timeout) if _pipeline is not None and _pipeline_pid == os.getpid() else True


def close(timeout: float = 10.0) -> bool:
    """Close this process's pipeline (a warm shutdown); the next use builds a new one."""
    global _pipeline
    with _pipeline_lock:
        closing, _pipeline = (_pipeline if _pipeline_pid == os.getpid() else None), None
    return closing.close(timeout) if closing is not None else True
