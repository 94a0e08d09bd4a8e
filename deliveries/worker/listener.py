"""The listener thread: with NOTIFY wake-ups, hears of new work at once and claims it.

It LISTENs on a connection of its own. When notifications come it takes all that have
arrived, then claims once (through the worker's claim, on this thread: no hand-off) what
they name as this process's or nobody's, so a burst of publishes costs one claim and work
another process owns costs this one nothing. While it is connected the worker's owners need
not poll for work published for their endpoints. If the connection breaks it says so once and
reconnects, backing off up to ``RECONNECT_MAX_SECONDS``; meanwhile the owners poll again and
the sweeps go on, so nothing waits longer than a sweep interval.
"""

import logging
import threading
from collections.abc import Callable

import psycopg
from django.db import connections

from deliveries.services import wakeups

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # how soon it notices it should stop
RECONNECT_MAX_SECONDS = 5.0


class Listener:
    def __init__(self, *, owner: str, claim: Callable[[list[str] | None], object]) -> None:
        self._owner = owner
        self._claim = claim
        self.connected = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhookhub-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=WAIT_SECONDS * 2)

    def _run(self) -> None:
        wait = 0.1
        while not self._closing.is_set():
            try:
                with wakeups.listening_connection() as connection:
                    if wait > 0.1:
                        logger.info("Listening for new work again.")
                    self.connected.set()
                    wait = 0.1
                    self._claim_heard(None)  # what was published while it was not listening
                    while not self._closing.is_set():
                        heard = list(connection.notifies(timeout=WAIT_SECONDS, stop_after=1))
                        if heard:
                            heard += connection.notifies(timeout=0)  # and whatever else has arrived: one claim
                            endpoint_ids = wakeups.to_claim((n.payload for n in heard), owner=self._owner)
                            if endpoint_ids != []:
                                self._claim_heard(endpoint_ids)
            except psycopg.Error as exc:
                if self.connected.is_set() or wait == 0.1:
                    logger.warning("Not listening for new work (%s); the sweeps go on. Reconnecting.", exc)
                self.connected.clear()
                self._closing.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX_SECONDS)
        self.connected.clear()
        connections.close_all()  # this thread's Django connections

    def _claim_heard(self, endpoint_ids: list[str] | None) -> None:
        """Claim these endpoints' work (None: any endpoint's)."""
        try:
            self._claim(endpoint_ids)  # the worker's guarded claim: it refreshes connections and logs an outage
        except Exception:  # noqa: BLE001 - the listener must outlive any one failure
            logger.exception("Claiming failed.")
