"""Thin Celery tasks: no arguments or JSON primitives in, a service call, a small result out."""

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

from deliveries import worker
from deliveries.services import doorbell, sweeping, wakeups
from deliveries.worker.ticker import ticker
from ground.conf import setting
from ground.db import DATABASE_UNAVAILABLE
from ground.task_names import DRAIN_TASK, SWEEP_TASK

logger = logging.getLogger(__name__)


@shared_task(name=DRAIN_TASK, ignore_result=True)
def drain() -> int:
    """Claim and send due deliveries; rings again if time ran out with work left."""
    try:
        claimed, more = worker.process_worker().drain(setting("DRAIN_MAX_SECONDS"))
    except DATABASE_UNAVAILABLE as exc:
        # The next task starts on a fresh connection; the sweeper rings again for what is due.
        logger.warning("Drain stopped, database unavailable (%s).", exc)
        return 0
    if more:
        doorbell.ring_now()
    return claimed


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int | None:
    try:
        swept = sweeping.sweep()
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("Sweep skipped, database unavailable (%s).", exc)
        return None
    return swept.rings if swept else None


@worker_process_init.connect
def _start_process_duties(**kwargs: object) -> None:
    """Each pool process (prefork or solo) also sweeps on its own clock (retries do not wait for
    beat) and, with NOTIFY wake-ups, listens from the start: no drain message will come to start it."""
    _start_duties()


@worker_ready.connect
def _start_duties_in_thread_pools(sender: object, **kwargs: object) -> None:
    """Pools without pool processes (threads, gevent, eventlet) tick and listen in the worker itself."""
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if pool is not None and not pool.__module__.endswith((".prefork", ".solo")):
        _start_duties()


def _start_duties() -> None:
    ticker.start(float(setting("SWEEP_INTERVAL_SECONDS")))
    if wakeups.notifying():
        worker.process_worker()


@worker_process_shutdown.connect
def _finish_sends(**kwargs: object) -> None:
    """On a warm shutdown, finish and record what this process is sending, then let go of the database."""
    worker.close(timeout=10.0)
