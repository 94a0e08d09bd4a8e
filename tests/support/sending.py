"""Send what is due as a worker does when its doorbell rings: through the real pipeline (claim, send, record)."""

from deliveries.services.pipeline import Pipeline
from ground.conf import webhookhub_settings


def drain_due() -> int:
    """Drain every due delivery with a fresh worker pipeline and wait until all it claimed is recorded.

    Returns how many deliveries were claimed. The pipeline records from its own thread and
    database connection, so tests that use this need ``django_db(transaction=True)``.
    """
    pipeline = Pipeline(webhookhub_settings())
    try:
        claimed, _more = pipeline.drain(max_seconds=10)
    finally:
        recorded = pipeline.close(timeout=30)
    assert recorded, "the pipeline did not record everything it claimed within 30 s"
    return claimed
