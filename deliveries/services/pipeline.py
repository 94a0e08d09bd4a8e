"""The worker's sending pipeline: a drain task claims due deliveries in batches and hands them over.

Inside each worker process:

- a thread pool sends, ``SEND_CONCURRENCY`` requests at once over pooled keep-alive
  connections; the drain waits when all of them are busy (backpressure);
- one endpoint never has more than ``ENDPOINT_CONCURRENCY`` of them. Its further
  deliveries wait in a short local queue and go out as its requests finish;
- an endpoint at its limit that has not answered within ``ENDPOINT_STALL_SECONDS``
  is stalled: its waiting and further deliveries are recorded at once as "not sent"
  attempts and retried on their schedule. The drain never waits for a stalled
  endpoint, so a slow or dead endpoint cannot hold up the others;
- one recorder thread writes results in bulk (attempts and delivery states of
  many sends per transaction). While the database is unreachable it keeps the batch
  and tries again, so a PostgreSQL restart costs no result and no duplicate send;
- the same thread renews the send lease of everything this process holds every third
  of a lease (a heartbeat), so a slow send never outlives its lease.

If the process dies, what it had claimed but not recorded is re-sent when the send
lease runs out, within ``SEND_LEASE_SECONDS`` (at least once; receivers dedupe on
``webhook-id``).
"""

import logging
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connections
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services.sending import (
    Batch,
    Sent,
    claim,
    not_sent,
    prepare,
    renew_leases,
    send_one,
    write_results,
)
from webhookhub.conf import webhookhub_settings
from webhookhub.db import DATABASE_UNAVAILABLE, database_reachable, refresh_connections

logger = logging.getLogger(__name__)

_RECORD_BATCH = 500
_ENDPOINT_QUEUE = 256
_RECORD_RETRY_MAX_SECONDS = 2.0  # longest wait between two tries of a batch while the database is down
_RECORD_TRIES_WHILE_REACHABLE = 3  # a batch that fails this often with the database up is written row by row
_IDLE_POLL_SECONDS = 0.5  # how soon an idle recorder notices it should stop


@dataclass
class _Waiting:
    delivery: Delivery
    batch: Batch


@dataclass
class _EndpointState:
    in_flight: int = 0
    last_progress: float = 0.0  # when it last answered quickly (or first got a request)
    waiting: deque[_Waiting] = field(default_factory=deque)


class Pipeline:
    def __init__(self, config: dict) -> None:
        self.config = config
        size = config["SEND_CONCURRENCY"]
        self._limit = config["ENDPOINT_CONCURRENCY"]
        self._stall = config["ENDPOINT_STALL_SECONDS"]
        self._lease = config["SEND_LEASE_SECONDS"]
        self._renew_every = self._lease / 3
        self._renew_at = time.monotonic() + self._renew_every
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhookhub-send")
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._endpoints: dict[str, _EndpointState] = {}
        self._unrecorded = 0
        self._held: dict[int, Delivery] = {}  # claimed and not yet recorded: their leases are renewed
        self._database_down = False
        self._results: queue.Queue[tuple[list[Sent], list[Delivery]]] = queue.Queue(maxsize=10 * size)
        self._closing = threading.Event()
        self._recorder = threading.Thread(target=self._record_forever, name="webhookhub-recorder", daemon=True)
        self._recorder.start()

    def drain(self, max_seconds: float) -> tuple[int, bool]:
        """Claim and send batch after batch until nothing is due or time is up; (claimed, more left)."""
        deadline = time.monotonic() + max_seconds
        total = 0
        while True:
            claimed = self.drain_once()
            total += claimed
            if claimed < self.config["DRAIN_BATCH_SIZE"]:
                return total, False
            if time.monotonic() > deadline:
                return total, True

    def drain_once(self) -> int:
        """Claim one batch of due deliveries and start sending it; returns how many were claimed."""
        now = timezone.now()
        deliveries = claim(
            now=now, lease_seconds=self.config["SEND_LEASE_SECONDS"], limit=self.config["DRAIN_BATCH_SIZE"]
        )
        if not deliveries:
            return 0
        batch = prepare(deliveries, now)
        with self._lock:
            self._unrecorded += len(deliveries)
            self._held.update((delivery.pk, delivery) for delivery in deliveries)
        if batch.cancelled:
            self._results.put(([], batch.cancelled))
        for delivery in batch.to_send:
            self._dispatch(_Waiting(delivery, batch))
        return len(deliveries)

    def _stalled(self, state: _EndpointState) -> bool:
        return state.in_flight >= self._limit and time.monotonic() - state.last_progress > self._stall

    def _dispatch(self, item: _Waiting) -> None:
        """Send now, wait in the endpoint's queue, or record as not sent if the endpoint stalls."""
        with self._lock:
            state = self._endpoints.setdefault(item.delivery.endpoint_id, _EndpointState())
            if state.in_flight < self._limit:
                if state.in_flight == 0 and not state.waiting:
                    state.last_progress = max(state.last_progress, time.monotonic())
                state.in_flight += 1
                start = True
            else:
                # A full queue of an endpoint that still answers is backpressure: wait for it.
                while len(state.waiting) >= _ENDPOINT_QUEUE and not self._stalled(state):
                    self._changed.wait(timeout=0.05)
                start = False
                if not self._stalled(state):
                    state.waiting.append(item)
                    return
        if start:
            self._slots.acquire()
            self._submit(item)
        else:
            self._not_sent([item.delivery])

    def _submit(self, item: _Waiting) -> None:
        future = self._executor.submit(self._send, item.delivery, item.batch)
        future.add_done_callback(self._sent)

    def _send(self, delivery: Delivery, batch: Batch) -> Sent:
        try:
            return send_one(delivery, batch.secrets[delivery.endpoint_id], self.config)
        except Exception:  # noqa: BLE001 - a bug in one send must not stop the others
            logger.exception("Sending delivery %s failed unexpectedly.", delivery.pk)
            return not_sent(delivery, "internal error in the sender (see the worker log).")

    def _sent(self, future: Future) -> None:
        """A request finished: hand its slot to the endpoint's next waiting delivery, or free it."""
        sent: Sent = future.result()
        rejected: list[Delivery] = []
        following: _Waiting | None = None
        with self._lock:
            state = self._endpoints[sent.delivery.endpoint_id]
            if sent.reached and sent.result.duration_ms < self._stall * 1000:
                state.last_progress = time.monotonic()
            while state.waiting and following is None:
                item = state.waiting.popleft()
                if self._stalled(state):
                    rejected.append(item.delivery)
                else:
                    following = item
            if following is None:
                state.in_flight -= 1
            self._changed.notify_all()
        self._results.put(([sent], []))
        if rejected:
            self._not_sent(rejected)
        if following is not None:
            self._submit(following)  # keeps the slot
        else:
            self._slots.release()

    def _not_sent(self, deliveries: list[Delivery]) -> None:
        reason = f"the endpoint is not answering: {self._limit} requests to it are still open."
        self._results.put(([not_sent(delivery, reason) for delivery in deliveries], []))

    def _record_forever(self) -> None:
        while not self._closing.is_set():
            sent, cancelled = self._next_results()
            if time.monotonic() >= self._renew_at:
                self._renew_leases()
            if sent or cancelled:
                self._record(sent, cancelled)
        connections.close_all()  # this thread's connections

    def _next_results(self) -> tuple[list[Sent], list[Delivery]]:
        """Up to a batch of results; none if nothing came before the next lease renewal is due."""
        try:
            sent, cancelled = self._results.get(
                timeout=min(_IDLE_POLL_SECONDS, max(0.01, self._renew_at - time.monotonic()))
            )
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

    def _record(self, sent: list[Sent], cancelled: list[Delivery]) -> None:
        """Write a batch of results; while the database is unreachable, keep it and try again."""
        tries_while_reachable, wait = 0, 0.1
        while True:
            refresh_connections()
            try:
                write_results(sent, cancelled, self.config)
                break
            except DATABASE_UNAVAILABLE as exc:
                if database_reachable():
                    tries_while_reachable += 1
                    if tries_while_reachable >= _RECORD_TRIES_WHILE_REACHABLE:
                        logger.exception("Recording %d results together keeps failing; one by one.", len(sent))
                        self._record_one_by_one(sent, cancelled)
                        break
                elif not self._database_down:
                    logger.warning("Database unavailable (%s); keeping %d results until it is back.", exc, len(sent))
                    self._database_down = True
                time.sleep(wait)
                wait = min(wait * 2, _RECORD_RETRY_MAX_SECONDS)
            except Exception:  # noqa: BLE001 - the recorder must outlive any failure
                logger.exception("Recording %d results together failed; recording them one by one.", len(sent))
                self._record_one_by_one(sent, cancelled)
                break
        if self._database_down:
            logger.info("Database reachable again; results recorded.")
            self._database_down = False
        with self._lock:
            for delivery in [item.delivery for item in sent] + cancelled:
                self._held.pop(delivery.pk, None)
            self._unrecorded -= len(sent) + len(cancelled)
            self._changed.notify_all()

    def _renew_leases(self) -> None:
        """The heartbeat: extend the lease of everything this process has claimed and not recorded."""
        with self._lock:
            held = list(self._held.values())
        self._renew_at = time.monotonic() + self._renew_every
        if not held:
            return
        refresh_connections()
        try:
            renew_leases(held, now=timezone.now(), lease_seconds=self._lease)
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Renewing %d send leases failed (%s); trying again in 1 s.", len(held), exc)
            self._renew_at = time.monotonic() + 1.0

    def _record_one_by_one(self, sent: list[Sent], cancelled: list[Delivery]) -> None:
        """So one bad row (e.g. its endpoint was just deleted) does not cost the others their record."""
        for item_sent, item_cancelled in [([item], []) for item in sent] + [([], [item]) for item in cancelled]:
            try:
                write_results(item_sent, item_cancelled, self.config)
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
        return idle


_pipeline: Pipeline | None = None
_pipeline_pid: int | None = None
_pipeline_lock = threading.Lock()


def pipeline() -> Pipeline:
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
