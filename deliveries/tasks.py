"""Thin Celery tasks: JSON-primitive arguments in, a service call, a small result out."""

from dataclasses import asdict
from datetime import datetime

from celery import shared_task

from deliveries.services.sending import send_deliveries
from deliveries.services.sweeping import sweep_due
from webhookhub.celery import SEND_TASK, SWEEP_TASK


@shared_task(name=SEND_TASK, ignore_result=True)
def send(delivery_ids: list[int], lease_token: str | None = None) -> dict[str, int]:
    token = datetime.fromisoformat(lease_token) if lease_token else None
    return asdict(send_deliveries(delivery_ids=delivery_ids, lease_token=token))


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    return sweep_due()
