"""The worker's sending pipeline: a drain task claims due deliveries in batches and hands them over.

Inside each worker process:

- a thread pool sends (``SEND_CONCURRENCY`` at once over pooled keep-alive
  connections); the task blocks only when all of them are busy (backpressure);
- no endpoint may hold more than ``ENDPOINT_CONCURRENCY`` of them. While an
  endpoint at its limit answers, the task waits for a slot (backpressure); once
  its oldest open request is older than ``ENDPOINT_STALL_SECONDS`` it counts as
  stalled, and its further deliveries are recorded as "not sent" attempts and
  retried on their schedule, so a slow or dead endpoint cannot hold up the others;
- one recorder thread writes results in bulk (attempts and delivery states of
  many sends per transaction).

If the process dies, what it had claimed but not recorded is re-sent when the send
lease runs out (at least once; receivers dedupe on ``webhook-id``).
"""

import logging
import os
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services.sending import Batch, Sent, claim, not_sent, prepare, send_one, write_results
from webhookhub.conf import webhookhub_settings

logger = logging.getLogger(__name__)

_RECORD_BATCH = 500


class Pipeline:
    def __init__(self, config: dict) -> None:
        self.config = config
        size = config["SEND_CONCURRENCY"]
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhookhub-send")
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._started: dict[str, dict[int, float]] = defaultdict(dict)  # endpoint -> delivery -> start
        self._unrecorded = 0
        self._results: queue.Queue[tuple[list[Sent], list[Delivery]]] = queue.Queue(maxsize=10 * size)
        threading.Thread(target=self._record_forever, name="webhookhub-recorder", daemon=True).start()

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
        busy: list[Sent] = []
        for delivery in batch.to_send:
            if not self._reserve(delivery):
                limit = self.config["ENDPOINT_CONCURRENCY"]
                busy.append(not_sent(delivery, f"the endpoint is slow: {limit} requests to it are still open."))
                continue
            self._slots.acquire()
            future = self._executor.submit(self._send, delivery, batch)
            future.add_done_callback(self._sent)
        if busy or batch.cancelled:
            self._results.put((busy, batch.cancelled))
        return len(deliveries)

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

    def _reserve(self, delivery: Delivery) -> bool:
        """Take one of the endpoint's slots, waiting while it is busy but answering; False if it stalls."""
        limit = self.config["ENDPOINT_CONCURRENCY"]
        stall = self.config["ENDPOINT_STALL_SECONDS"]
        with self._lock:
            started = self._started[delivery.endpoint_id]
            while len(started) >= limit:
                if time.monotonic() - min(started.values()) > stall:
                    return False
                self._slot_freed.wait(timeout=0.05)
            started[delivery.pk] = time.monotonic()
            return True

    def _send(self, delivery: Delivery, batch: Batch) -> Sent:
        try:
            return send_one(delivery, batch.secrets[delivery.endpoint_id], batch.timestamp, self.config)
        except Exception:  # noqa: BLE001 - a bug in one send must not stop the others
            logger.exception("Sending delivery %s failed unexpectedly.", delivery.pk)
            return not_sent(delivery, "internal error in the sender (see the worker log).")

    def _sent(self, future: Future) -> None:
        sent: Sent = future.result()
        self._slots.release()
        with self._lock:
            self._started[sent.delivery.endpoint_id].pop(sent.delivery.pk, None)
            self._slot_freed.notify_all()
        self._results.put(([sent], []))

    def _record_forever(self) -> None:
        while True:
            sent, cancelled = self._results.get()
            sent, cancelled = list(sent), list(cancelled)
            while len(sent) + len(cancelled) < _RECORD_BATCH:
                try:
                    more_sent, more_cancelled = self._results.get_nowait()
                except queue.Empty:
                    break
                sent += more_sent
                cancelled += more_cancelled
            try:
                write_results(sent, cancelled, self.config)
            except DatabaseError:
                # Leases still cover these deliveries: they are re-sent when they run out.
                logger.exception("Recording %d results failed.", len(sent) + len(cancelled))
                close_old_connections()
            with self._lock:
                self._unrecorded -= len(sent) + len(cancelled)
                if self._unrecorded <= 0:
                    self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything claimed has been sent and recorded."""
        with self._lock:
            return self._idle.wait_for(lambda: self._unrecorded <= 0, timeout=timeout)


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
