"""The worker: each worker process sends through one ``Worker`` (``loop.py``), created on first use.

Its parts, each in a module of its own: ``loop`` (the loop thread, the one place a claim
starts, and the sender threads), ``lanes`` (per-endpoint pacing in memory) and ``recorder``
(batched writes and the lease heartbeat); what a batch writes is ``deliveries.services.recording``.
"""

import os
import threading

from deliveries.worker.loop import Worker
from ground.conf import webhookhub_settings

__all__ = ["Worker", "close", "process_worker", "wait_idle"]

_worker: Worker | None = None
_worker_pid: int | None = None
_lock = threading.Lock()


def process_worker() -> Worker:
    """This process's worker, created on first use (after a worker forks)."""
    global _worker, _worker_pid
    with _lock:
        if _worker is None or _worker_pid != os.getpid():
            _worker, _worker_pid = Worker(webhookhub_settings()), os.getpid()
        return _worker


def wait_idle(timeout: float = 10.0) -> bool:
    return _worker.wait_idle(timeout) if _worker is not None and _worker_pid == os.getpid() else True


def close(timeout: float = 10.0) -> bool:
    """Close this process's worker (a warm shutdown); the next use builds a new one."""
    global _worker
    with _lock:
        closing, _worker = (_worker if _worker_pid == os.getpid() else None), None
    return closing.close(timeout) if closing is not None else True
