"""The recorder: writes what the sends said, in batches, and keeps this process's leases alive.

It runs on the worker's loop thread (one thread for the database work of claiming and recording,
as few hand-offs between threads as possible). Results queue up as requests finish; the
recorder takes up to ``RECORD_BATCH`` at a time, has
``deliveries.services.recording`` decide what they write (once) and writes it in one
transaction. While the database is unreachable it keeps the batch and tries again, so a
PostgreSQL restart costs no result and no duplicate send; a batch that keeps failing with the
database up is written one result at a time, so one bad row does not cost the others.

It is the heartbeat too: every third of a lease it renews the leases of everything the process
holds and the ownership of its endpoints (a result is written only while its lease is still
the one it was claimed with, so renewals and writes share the thread).
"""

import logging
import queue
import time
from datetime import timedelta
from typing import Any

from django.utils import timezone

from deliveries.models import Delivery
from deliveries.services.claims import renew_ownership
from deliveries.services.recording import Recorded, decide_results, write
from deliveries.services.sending import SendResult, renew_leases
from deliveries.worker.lanes import Lanes
from ground.db import DATABASE_UNAVAILABLE, database_reachable, refresh_connections

logger = logging.getLogger(__name__)

RECORD_BATCH = 500
RETRY_MAX_SECONDS = 2.0  # longest wait between two tries of a batch while the database is down
TRIES_WHILE_REACHABLE = 3  # a batch that fails this often with the database up is written row by row

Results = tuple[list[SendResult], list[Delivery]]  # answered, and cancelled (their endpoint was disabled)


class Recorder:
    def __init__(self, config: dict[str, Any], *, owner: str, lanes: Lanes) -> None:
        """``lanes`` say what to renew: the deliveries held, the endpoints owned and what they learnt."""
        self.config = config
        self.owner = owner
        self._lanes = lanes
        self._lease = config["SEND_LEASE_SECONDS"]
        self._renew_every = self._lease / 3
        self.renew_at = time.monotonic() + self._renew_every
        self._database_down = False
        self._results: queue.SimpleQueue[Results] = queue.SimpleQueue()

    def put(self, sent: list[SendResult], cancelled: list[Delivery]) -> None:
        """Queue results (any thread)."""
        self._results.put((sent, cancelled))

    def has_results(self) -> bool:
        return not self._results.empty()

    def record_batch(self) -> list[Delivery]:
        """Write up to a batch of the queued results (keeping them while the database is down); returns the
        deliveries written (or, where their lease was lost, left to whoever holds it now)."""
        sent: list[SendResult] = []
        cancelled: list[Delivery] = []
        while len(sent) + len(cancelled) < RECORD_BATCH:
            try:
                more_sent, more_cancelled = self._results.get_nowait()
            except queue.Empty:
                break
            sent += more_sent
            cancelled += more_cancelled
        if not sent and not cancelled:
            return []
        recorded = decide_results(sent, cancelled, self.config)
        self._record(recorded)
        return recorded.deliveries

    def renew_if_due(self) -> None:
        if time.monotonic() >= self.renew_at:
            self._renew()

    def _record(self, recorded: Recorded) -> None:
        """Write a decided batch; while the database is unreachable, keep it and try again.

        A try that failed changed nothing, so the one that succeeds writes what a single try would have.
        """
        tries_while_reachable, wait = 0, 0.1
        while True:
            self.renew_if_due()  # first, once the database is back: the leases must not run out meanwhile
            refresh_connections(health_check=False)
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

    def _record_one_by_one(self, recorded: Recorded) -> None:
        for single in recorded.one_by_one():
            try:
                write(single)
            except Exception:  # noqa: BLE001 - leases still cover these: they are re-sent when they run out
                logger.exception("Recording a result failed.")
                refresh_connections()

    def _renew(self) -> None:
        """The heartbeat: extend the leases of everything this process holds, and its endpoints' ownership (with
        the concurrency learnt for them since it was last written)."""
        held, owned = self._lanes.heartbeat()
        self.renew_at = time.monotonic() + self._renew_every
        if not held and not owned:
            return
        refresh_connections(health_check=False)
        now = timezone.now()
        learnt = {endpoint_id: state for endpoint_id, state in owned.items() if state is not None}
        try:
            renew_leases(held, now=now, lease_seconds=self._lease)
            until = now + timedelta(seconds=self._lease)
            renew_ownership(owner=self.owner, endpoint_ids=owned, until=until, concurrency=learnt)
            self._lanes.concurrency_written(learnt)
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("Renewing %d send leases failed (%s); trying again in 1 s.", len(held), exc)
            self.renew_at = time.monotonic() + 1.0
