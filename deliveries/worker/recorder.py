"""The recorder thread: writes what the sends said, in batches, and keeps this process's leases alive.

Results queue up as requests finish; the recorder takes up to ``RECORD_BATCH`` at a time, has
``deliveries.services.recording`` decide what they write (once) and writes it in one
transaction. While the database is unreachable it keeps the batch and tries again, so a
PostgreSQL restart costs no result and no duplicate send; a batch that keeps failing with the
database up is written one result at a time, so one bad row does not cost the others.

The same thread is the heartbeat: every third of a lease it renews the leases of everything
the process holds and the ownership of its endpoints (a result is written only while its
lease is still the one it was claimed with, so renewals and writes share the thread).
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services.claims import renew_ownership
from deliveries.services.recording import Recorded, decide_results, write
from deliveries.services.sending import SendResult, renew_leases
from ground.db import DATABASE_UNAVAILABLE, database_reachable, refresh_connections

logger = logging.getLogger(__name__)

RECORD_BATCH = 500
RETRY_MAX_SECONDS = 2.0  # longest wait between two tries of a batch while the database is down
TRIES_WHILE_REACHABLE = 3  # a batch that fails this often with the database up is written row by row
IDLE_POLL_SECONDS = 0.5  # how soon an idle recorder notices it should stop

Results = tuple[list[SendResult], list[Delivery]]  # answered, and cancelled (their endpoint was disabled)


class Recorder:
    def __init__(
        self,
        config: dict[str, Any],
        *,
        owner: str,
        heartbeat: Callable[[], tuple[list[Delivery], list[str]]],
        recorded: Callable[[list[Delivery]], None],
    ) -> None:
        """``heartbeat`` says what to renew (deliveries held, endpoints owned); ``recorded`` hears what was written."""
        self.config = config
        self.owner = owner
        self._heartbeat = heartbeat
        self._recorded = recorded
        self._lease = config["SEND_LEASE_SECONDS"]
        self._renew_every = self._lease / 3
        self._renew_at = time.monotonic() + self._renew_every
        self._database_down = False
        self._results: queue.Queue[Results] = queue.Queue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhookhub-recorder", daemon=True)
        self._thread.start()

    def put(self, sent: list[SendResult], cancelled: list[Delivery]) -> None:
        self._results.put((sent, cancelled))

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=IDLE_POLL_SECONDS * 4)

    def _run(self) -> None:
        while not self._closing.is_set():
            sent, cancelled = self._next_batch()
            if time.monotonic() >= self._renew_at:
                self._renew()
            if sent or cancelled:
                self._record(decide_results(sent, cancelled, self.config))
        connections.close_all()  # this thread's connections

    def _next_batch(self) -> Results:
        """Up to a batch of results; none if nothing came before the heartbeat is due."""
        wait = min(IDLE_POLL_SECONDS, max(0.001, self._renew_at - time.monotonic()))
        try:
            sent, cancelled = self._results.get(timeout=wait)
        except queue.Empty:
            return [], []
        sent, cancelled = list(sent), list(cancelled)
        while len(sent) + len(cancelled) < RECORD_BATCH:
            try:
                more_sent, more_cancelled = self._results.get_nowait()
            except queue.Empty:
                break
            sent += more_sent
            cancelled += more_cancelled
        return sent, cancelled

    def _record(self, recorded: Recorded) -> None:
        """Write a decided batch; while the database is unreachable, keep it and try again.

        A try that failed changed nothing, so the one that succeeds writes what a single try would have.
        """
        tries_while_reachable, wait = 0, 0.1
        while True:
            if time.monotonic() >= self._renew_at:
                self._renew()  # first, once the database is back: the leases must not run out meanwhile
            refresh_connections()
            try:
                write(recorded)
                break
            except DATABASE_UNAVAILABLE as exc:
                if database_reachable():
                    tries_while_reachable += 1
                    if tries_while_reachable >= TRIES_WHILE_REACHABLE:
                        logger.exception("Recording %d results together keeps failing; one by one.", len(recorded))
                        self._record_one_by_one(recorded)
                        break
                elif not self._database_down:
                    logger.warning(
                        "Database unavailable (%s); keeping %d results until it is back.", exc, len(recorded)
                    )
                    self._database_down = True
                time.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_SECONDS)
            except Exception:  # noqa: BLE001 - the recorder must outlive any failure
                logger.exception("Recording %d results together failed; recording them one by one.", len(recorded))
                self._record_one_by_one(recorded)
                break
        if self._database_down:
            logger.info("Database reachable again; results recorded.")
            self._database_down = False
        self._recorded(recorded.deliveries)

    def _record_one_by_one(self, recorded: Recorded) -> None:
        for single in recorded.one_by_one():
            try:
                write(single)
            except Exception:  # noqa: BLE001 - leases still cover these: they are re-sent when they run out
                logger.exception("Recording a result failed.")
                refresh_connections()

    def _renew(self) -> None:
        """The heartbeat: extend the leases of everything this process holds, and its endpoints' ownership."""
        held, owned = self._heartbeat()
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
