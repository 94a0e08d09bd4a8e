"""Thin Celery tasks: no arguments or JSON primitives in, a service call, a small result out."""

from celery import shared_task
from celery.signals import worker_process_shutdown
from django.utils import timezone

from deliveries.services import dispatch, pipeline
from deliveries.services.rollups import prune_rollups
from deliveries.services.sweeping import sweep_due
from events.triggers import prune_trigger_requests
from webhookhub.celery import DRAIN_TASK, SWEEP_TASK
from webhookhub.conf import setting


@shared_task(name=DRAIN_TASK, ignore_result=True)
def drain() -> int:
    """Claim and send due deliveries; rings again if time ran out with work left."""
    claimed, more = pipeline.pipeline().drain(setting("DRAIN_MAX_SECONDS"))
    if more:
        dispatch.ring_now()
    return claimed


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    now = timezone.now()
    prune_rollups(now=now)
    prune_trigger_requests(now=now)
    return sweep_due(now=now)


@worker_process_shutdown.connect
def _finish_sends(**kwargs: object) -> None:
    """On a warm shutdown, finish and record what this process is sending."""
    pipeline.wait_idle(timeout=10.0)
