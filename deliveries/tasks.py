"""Thin Celery tasks: JSON-primitive arguments in, a service call, a small result out."""

from datetime import datetime

from celery import shared_task
from celery.signals import worker_process_shutdown

from deliveries.services import pipeline
from deliveries.services.sweeping import sweep_due
from webhookhub.celery import SEND_TASK, SWEEP_TASK


@shared_task(name=SEND_TASK, ignore_result=True)
def send(delivery_ids: list[int], lease_tokens: list[str] | str | None = None) -> int:
    """Claim the deliveries and start sending them; returns how many were claimed."""
    if isinstance(lease_tokens, str):  # messages of the first release carried one token
        lease_tokens = [lease_tokens]
    tokens = [datetime.fromisoformat(token) for token in lease_tokens or ()]
    return pipeline.pipeline().submit(delivery_ids, tokens)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    return sweep_due()


@worker_process_shutdown.connect
def _finish_sends(**kwargs: object) -> None:
    """On a warm shutdown, finish and record what this process is sending."""
    pipeline.drain(timeout=10.0)
