"""Every worker process sweeps on its own clock, so due work waits neither for beat nor for the broker.

With beat dead and nothing being published, nothing else would ring for a retry that
comes due. Each worker process runs one ``SweepTicker`` thread; ``sweeping.sweep`` lets
one sweeper per interval do the work, so N workers cost N tiny ``UPDATE``s an interval.
The process whose turn it is also starts on the due work itself, in this thread: with
the broker down or its consumer still reconnecting, delivery goes on.
"""

import logging
import os
import random
import threading
import time

from deliveries import worker
from deliveries.services.sweeping import sweep
from ground.conf import setting
from ground.db import DATABASE_UNAVAILABLE, refresh_connections

logger = logging.getLogger(__name__)


class SweepTicker:
    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._failing = False

    def start(self, interval: float) -> None:
        """Start this process's ticker thread (once per process, and again in a forked child)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._failing = os.getpid(), False
            threading.Thread(target=self._run, args=(interval,), name="webhookhub-sweep-ticker", daemon=True).start()

    def _run(self, interval: float) -> None:
        while True:  # a daemon thread: it ends with its process
            time.sleep(interval * random.uniform(0.9, 1.1))  # spread the processes' ticks apart
            self.tick()

    def tick(self) -> int | None:
        """Sweep if it is this process's turn, and drain what is due; returns how many were due
        (None: not its turn, or no database)."""
        refresh_connections()
        try:
            swept = sweep()
            if swept and swept.due:
                worker.process_worker().drain(float(setting("DRAIN_MAX_SECONDS")))
        except DATABASE_UNAVAILABLE as exc:
            if not self._failing:
                logger.warning("Sweep failed, database unavailable (%s); retrying every interval.", exc)
            self._failing = True
            return None
        except Exception:  # noqa: BLE001 - the ticker must outlive any one failure
            logger.exception("Sweep failed.")
            return None
        if self._failing:
            logger.info("Database reachable again; sweeping.")
        self._failing = False
        return swept.due if swept else None


ticker = SweepTicker()
