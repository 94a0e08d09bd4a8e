"""Ringing the workers: "there is work", and whoever hears it claims due deliveries from the database.
Losing a ring loses nothing; the sweeper rings again for whatever is due and unclaimed.

With ``WAKE_UP`` notify (PostgreSQL) a ring is a ``NOTIFY`` every worker process hears
(``deliveries.services.wakeups``; publishing raises its own, in the publishing statement).
Otherwise it is a drain message through the broker: ``ring`` (called on commit) does not talk
to the broker itself, a background thread sends at most one doorbell per interval per
process, however many events were published in between. The interval is
``DOORBELL_INTERVAL_SECONDS`` when publishing is quiet and grows up to
``DOORBELL_MAX_INTERVAL_SECONDS`` while it is busy.
"""

import atexit
import logging
import os
import threading
import time

from celery import current_app
from kombu.exceptions import ChannelError, OperationalError

from deliveries.services import wakeups
from ground.conf import setting
from ground.db import DATABASE_UNAVAILABLE
from ground.task_names import DRAIN_TASK

logger = logging.getLogger(__name__)


def ring_now(count: int = 1) -> int:
    """Ring now: ``count`` drain messages through the broker, or one NOTIFY; returns how many rings went."""
    if wakeups.notifying():
        try:
            wakeups.notify()
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Database unavailable (%s); the sweeper will ring again.", exc)
            return 0
        return 1
    for sent in range(count):
        try:
            current_app.send_task(DRAIN_TASK)
        except (OperationalError, ChannelError, OSError) as exc:  # ChannelError: the embedded broker's folder
            logger.warning("Broker unreachable (%s); the sweeper will ring again.", type(exc).__name__)
            return sent
    return count


class Doorbell:
    """A per-process background thread that coalesces rings into few broker messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pid: int | None = None
        self._rings = 0
        self._busy = False

    def ring(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or first use after a fork
                self._pid, self._rings, self._busy = os.getpid(), 0, False
                threading.Thread(target=self._run, name="webhookhub-doorbell", daemon=True).start()
            self._rings += 1
            self._changed.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every ring so far has been handed to the broker (or given up on)."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._rings and not self._busy, timeout=timeout)

    def _run(self) -> None:
        shortest = setting("DOORBELL_INTERVAL_SECONDS")
        longest = setting("DOORBELL_MAX_INTERVAL_SECONDS")
        interval, last_sent = shortest, 0.0
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._rings > 0)
            time.sleep(max(0.0, last_sent + interval - time.monotonic()))
            with self._lock:
                rings, self._rings, self._busy = self._rings, 0, True
            try:
                ring_now()
            except Exception:  # noqa: BLE001 - the thread must survive; the sweeper rings again
                logger.exception("Doorbell failed; the sweeper will ring again.")
            last_sent = time.monotonic()
            # Busy: several commits per doorbell, so wait longer and let workers claim bigger
            # batches. Quiet: ring at once, for latency.
            interval = min(longest, interval * 2) if rings > 2 else max(shortest, interval / 2)
            with self._lock:
                self._busy = False
                self._changed.notify_all()


doorbell = Doorbell()
atexit.register(doorbell.flush)


def ring() -> None:
    """Ring after a commit (``transaction.on_commit(ring)``)."""
    if wakeups.notifying():
        ring_now()
    else:
        doorbell.ring()


def flush(timeout: float = 5.0) -> bool:
    return doorbell.flush(timeout)
