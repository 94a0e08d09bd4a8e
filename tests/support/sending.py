"""Send what is due as a worker does when its doorbell rings: through the real worker (claim, send, record)."""

from deliveries.worker import Worker
from ground.conf import webhookhub_settings


def drain_due() -> int:
    """Drain every due delivery with a fresh ``Worker`` and wait until all it claimed is recorded.

    Returns how many deliveries the worker claimed: by the drain, or by its listener, which claims what was
    published before it listened as soon as it connects (whichever takes the claim lock first). The worker
    claims and records from its own threads and database connections, so tests that use this need
    ``django_db(transaction=True)``.
    """
    worker = Worker(webhookhub_settings())
    try:
        worker.drain(max_seconds=10)
    finally:
        recorded = worker.close(timeout=30)
    assert recorded, "the worker did not record everything it claimed within 30 s"
    return worker.claimed
