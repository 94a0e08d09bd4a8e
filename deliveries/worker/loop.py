"""A worker process's sending machinery: the loop thread, the lanes, the sender threads and the recorder.

- **Claims**: every claim is ``claim_once``, one at a time. A drain task or the sweep ticker
  claims on its own thread (``drain``, so a doorbell's claim waits for no hand-off), and the
  listener (NOTIFY wake-ups) on its own, only the endpoints a notification names as this
  process's or nobody's. The loop thread claims when a limit of time runs out (a
  ``Retry-After`` pause, the next probe) and before it records a batch of answers if due work
  may be left behind (a limit, full capacity, a stopped lane: so lanes are refilled before
  they run dry), and after recording the answers of keyed deliveries (the next of each key may go then).
  Without a listener (broker wake-ups) it claims before every batch of answers
  (work published for an endpoint this process owns is found whichever process took its
  doorbell) and, while an endpoint it owns is idle, every ``IDLE_POLL_SECONDS`` (other workers
  leave an owned endpoint's new work to its owner).
- **The loop** (this module) keeps those timers, starts rate-limited sends when their time
  comes, gives back the leases of deliveries a stopped lane will not send, and hands idle
  endpoints back.
- **The lanes** (``lanes.py``) hold the leased deliveries per endpoint and pace them.
- **The sender threads** (``senders.py``, ``SEND_CONCURRENCY``) make the requests over pooled connections;
  as each finishes, the next that may go starts at once, from that thread.
- **The recorder** (``recorder.py``) writes the results in batches and renews the leases, on the
  loop thread: one thread does the database work of claiming and recording (fewer hand-offs
  between threads).

If the process dies, what it had claimed but not recorded is re-sent when the send lease runs
out, within ``SEND_LEASE_SECONDS`` (at least once; receivers dedupe on ``webhook-id``); its
endpoints' ownership lapses at the same time.
"""

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from django.db import connections
from django.utils import timezone

from deliveries.services import wakeups
from deliveries.services.claims import Claimed
from deliveries.services.sending import SendResult, answer_of_sent, claim, prepare, signal_of_sent
from deliveries.worker.handing_back import give_back_unsent, hand_back_idle
from deliveries.worker.lanes import Lanes
from deliveries.worker.listener import Listener
from deliveries.worker.recorder import Recorder
from deliveries.worker.senders import Senders
from ground.db import DATABASE_UNAVAILABLE, refresh_connections

logger = logging.getLogger(__name__)

HELD_PER_THREAD = 4  # a process leases at most this many deliveries per sender thread
IDLE_POLL_SECONDS = 0.005  # while an owned endpoint is idle, its owner looks this often for what was published for it
CLAIM_RETRY_SECONDS = 1.0  # after a claim failed
LOOP_TICK_SECONDS = 0.5  # the longest the loop sleeps (to notice it is closing)


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._lanes = Lanes(senders=config["SEND_CONCURRENCY"], clock=time.monotonic)
        self._senders = Senders(config, answered=self._answered)
        self._recorder = Recorder(config, owner=self.owner, lanes=self._lanes)
        self._listener = Listener(owner=self.owner, claim=self._claim) if wakeups.notifying() else None
        self._wake = threading.Condition()
        self._claim_lock = threading.Lock()  # one claim round at a time
        self._claim_again_at: float | None = None  # a limit of time (pause, probe) lets more go then
        self._more_due = False  # the last claims left due work behind (a limit, full capacity, a stopped lane)
        self.claimed = 0  # deliveries this worker has claimed, whichever thread claimed them
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="webhookhub-loop", daemon=True)
        self._thread.start()

    # --- called from other threads -------------------------------------------------------------------
    def drain(self, max_seconds: float) -> tuple[int, bool]:
        """Claim round after round, on the caller's thread (a drain task, the sweep ticker), until nothing
        more can go now or time is up; (claimed, more left)."""
        deadline = time.monotonic() + max_seconds
        total = 0
        while True:
            claimed, asked = self.claim_once()
            total += claimed
            if claimed < asked or not asked:
                return total, False
            if time.monotonic() > deadline:
                return total, True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything claimed has been sent and recorded."""
        return self._lanes.wait_recorded(timeout)

    def close(self, timeout: float) -> bool:
        """Finish and record what was claimed (up to ``timeout``), then stop the threads and hand the
        endpoints back. Returns whether everything was recorded."""
        idle = self.wait_idle(timeout)
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout=LOOP_TICK_SECONDS * 4)
        if self._listener is not None:
            self._listener.close()
        self._senders.shutdown()
        hand_back_idle(self._lanes, owner=self.owner, closing=True)  # what is still leased is re-sent later
        return idle

    def _notify(self) -> None:
        """Wake the loop: there are results to record."""
        with self._wake:
            self._wake.notify()

    # --- the loop thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        poll_at = 0.0
        while True:
            if not self._wait_for_duty(poll_at):
                break
            try:
                poll_at = self._duties(poll_at)
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                logger.exception("The worker's loop failed; going on.")
                time.sleep(CLAIM_RETRY_SECONDS)
        connections.close_all()  # this thread's connections

    def _duties(self, poll_at: float) -> float:
        """One turn of the loop; returns when to poll an idle endpoint next."""
        now = time.monotonic()
        self._recorder.renew_if_due()
        give_back_unsent(self._lanes)
        idle_lanes = self._lanes.give_up_at is not None and not self.listening
        timed_out = self._claim_again_at is not None and now >= self._claim_again_at
        results = self._recorder.has_results()
        # Answers came and work may be waiting: claim before recording them, so a lane is refilled before it
        # runs dry (without a listener, work published for an endpoint this process owns is found so).
        refill = results and (self._more_due or not self.listening)
        if refill or timed_out or (idle_lanes and now >= poll_at):
            poll_at = now + IDLE_POLL_SECONDS
            self._claim()
        if results:
            _, stopped = self._lanes.held_by_endpoint()
            recorded = self._recorder.record_batch()
            self._lanes.recorded(recorded)
            if stopped - self._lanes.held_by_endpoint()[1] and self._more_due:
                self._claim()  # a stopped lane's answer is recorded: what waited for it may go
            if keyed := sorted({delivery.endpoint_id for delivery in recorded if delivery.ordering_key is not None}):
                self._claim(keyed)  # the next delivery of an ordering key may go now (deliveries.services.ordering)
        if self._lanes.give_up_at is not None and now >= self._lanes.give_up_at:
            with self._claim_lock:  # not while a claim (the listener's) may be taking work for these endpoints
                hand_back_idle(self._lanes, owner=self.owner)
        if self._lanes.next_start_at is not None and now >= self._lanes.next_start_at:
            self._senders.start(self._lanes.starts_due())
        return poll_at

    @property
    def listening(self) -> bool:
        """Whether NOTIFY wakes this process for new work (then its owners need not poll for it)."""
        return self._listener is not None and self._listener.connected.is_set()

    def _wait_for_duty(self, poll_at: float) -> bool:
        """Sleep until there are results to record or the next timer is due; False when closing."""
        idle_poll = poll_at if self._lanes.give_up_at is not None and not self.listening else None
        lanes = self._lanes
        timers = [self._recorder.renew_at, self._claim_again_at, lanes.next_start_at, lanes.give_up_at, idle_poll]
        wake_at = min((at for at in timers if at is not None), default=time.monotonic() + LOOP_TICK_SECONDS)
        with self._wake:
            if not (self._closing or self._recorder.has_results()):
                self._wake.wait(timeout=min(LOOP_TICK_SECONDS, max(0.0, wake_at - time.monotonic())))
            return not self._closing

    def _claim(self, endpoint_ids: list[str] | None = None) -> None:
        """A claim of the loop's or the listener's (of these endpoints only), on fresh connections; if the
        database is unavailable it is logged and the loop tries again a second later."""
        refresh_connections(health_check=False)
        try:
            self.claim_once(endpoint_ids)
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Claiming failed, database unavailable (%s).", exc)
            self._claim_again_at = time.monotonic() + CLAIM_RETRY_SECONDS

    def claim_once(self, endpoint_ids: list[str] | None = None) -> tuple[int, int]:
        """Every claim: one round for this process's free room (of these endpoints' work, or any), its deliveries
        started at once; (claimed, room asked for). One at a time, whoever asks (the loop, the listener, a drain)."""
        with self._claim_lock:
            return self._claim_round(endpoint_ids)

    def _claim_round(self, endpoint_ids: list[str] | None) -> tuple[int, int]:
        room = min(self._lanes.senders * HELD_PER_THREAD - self._lanes.unrecorded(), self.config["DRAIN_BATCH_SIZE"])
        if room <= 0:
            self._more_due = True
            return 0, 0  # room frees up as results are recorded, and the loop claims with the next answers
        held, stopped = self._lanes.held_by_endpoint()
        now = timezone.now()
        lease = self.config["SEND_LEASE_SECONDS"]
        deliveries, claimed = claim(
            owner=self.owner,
            now=now,
            lease_seconds=lease,
            capacity=room,
            held=held,
            limits=self._lanes.limits(),
            skip=stopped,
            endpoint_ids=endpoint_ids,
        )
        # A claim of named endpoints says nothing of the others: it may only add to what waits.
        self._remember_limits(claimed, of_all=endpoint_ids is None)
        if not deliveries:
            return 0, room
        self.claimed += len(deliveries)
        batch = prepare(deliveries, now)
        starts = self._lanes.add(claimed.endpoints, batch, wall_now=now)
        if batch.cancelled:
            self._recorder.put([], batch.cancelled)
            self._notify()
        self._senders.start(starts)
        return len(deliveries), room

    def _remember_limits(self, claimed: Claimed, *, of_all: bool) -> None:
        """Whether to claim again as requests finish (due work was left behind), and when besides: when the
        earliest limit of time (pause, probe) runs out. A claim of some endpoints only adds to what was known."""
        again_at = None
        if claimed.wake_at is not None:
            again_at = time.monotonic() + max(0.0, (claimed.wake_at - timezone.now()).total_seconds())
        if of_all:
            self._more_due, self._claim_again_at = claimed.more_due, again_at
        else:
            self._more_due = self._more_due or claimed.more_due
            if again_at is not None and (self._claim_again_at is None or again_at < self._claim_again_at):
                self._claim_again_at = again_at

    def _answered(self, sent: SendResult) -> None:
        """On a sender thread, as a request finishes: the next that may go starts now, the result goes to
        the recorder, and the loop claims again if the lane runs low (a round of claims per refill, not
        per answer)."""
        if sent.request_made:
            starts = self._lanes.answered(sent.delivery, signal_of_sent(sent), answer_of_sent(sent))
        else:
            starts = self._lanes.answered(sent.delivery, None)
        self._recorder.put([sent], [])
        self._senders.start(starts)
        self._notify()
