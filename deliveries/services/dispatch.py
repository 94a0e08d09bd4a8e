"""Handing deliveries to the broker. The broker is only a doorbell: losing a message loses nothing.

``ring`` (called on commit of every publish) does not talk to the broker itself: a
background thread coalesces the doorbells of many transactions into few messages,
so a busy process sends one message per batch instead of one per event. If the
process dies before the thread sent them, the deliveries' queue lease runs out and
the sweeper hands them over instead.
"""

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from kombu.exceptions import OperationalError

from webhookhub.celery import SEND_TASK, app
from webhookhub.conf import setting

logger = logging.getLogger(__name__)


def _batches(groups: Sequence[tuple[Sequence[int], datetime]], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Message-sized batches of ids, each with the lease tokens of the ids it carries."""
    ids: list[int] = []
    tokens: set[str] = set()
    for group_ids, lease_until in groups:
        for delivery_id in group_ids:
            ids.append(delivery_id)
            tokens.add(lease_until.isoformat())
            if len(ids) == size:
                yield ids, sorted(tokens)
                ids, tokens = [], set()
    if ids:
        yield ids, sorted(tokens)


def hand_off(groups: Sequence[tuple[Sequence[int], datetime]]) -> int:
    """Enqueue send tasks now for (delivery ids, the lease they were handed over with) groups.

    Returns how many ids were enqueued. If the broker is unreachable the deliveries
    stay leased until their lease runs out; then the sweeper enqueues them again.
    """
    sent = 0
    for ids, tokens in _batches(groups, setting("DELIVERY_BATCH_SIZE")):
        try:
            app.send_task(SEND_TASK, args=[ids, tokens])
        except (OperationalError, OSError) as exc:
            logger.warning("Broker unreachable (%s); deliveries wait for the sweeper.", type(exc).__name__)
            break
        sent += len(ids)
    return sent


class Doorbell:
    """A per-process background thread that batches hand-offs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.SimpleQueue[tuple[list[int], datetime]] = queue.SimpleQueue()
        self._unsent = 0
        self._idle = threading.Condition(self._lock)

    def ring(self, delivery_ids: list[int], lease_until: datetime) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or first use after a fork
                self._queue = queue.SimpleQueue()
                self._unsent = 0
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="webhookhub-doorbell", daemon=True).start()
            self._unsent += 1
        self._queue.put((delivery_ids, lease_until))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything rung so far was handed to the broker (or given up on)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._unsent == 0, timeout=timeout)

    def _run(self) -> None:
        limit = setting("DELIVERY_BATCH_SIZE")
        linger = setting("DOORBELL_LINGER_SECONDS")
        while True:
            items = [self._queue.get()]
            count = len(items[0][0])
            deadline = time.monotonic() + linger
            while count < limit:
                try:
                    items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
                count += len(items[-1][0])
            try:
                hand_off(items)
            except Exception:  # noqa: BLE001 - the thread must survive; the sweeper recovers the ids
                logger.exception("Doorbell failed; the sweeper will hand these deliveries over.")
            with self._lock:
                self._unsent -= len(items)
                if self._unsent == 0:
                    self._idle.notify_all()


doorbell = Doorbell()
atexit.register(doorbell.flush)


def ring(delivery_ids: list[int], lease_until: datetime) -> None:
    doorbell.ring(delivery_ids, lease_until)


def flush(timeout: float = 5.0) -> bool:
    return doorbell.flush(timeout)
