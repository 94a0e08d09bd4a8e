"""The Celery app: ``celery -A webhookhub worker`` sends, ``celery -A webhookhub beat`` runs the sweeper."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")

app = Celery("webhookhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

DRAIN_TASK = "deliveries.drain"
SWEEP_TASK = "deliveries.sweep"


@app.on_after_configure.connect
def _schedule_sweeper(sender: Celery, **kwargs: object) -> None:
    from webhookhub.conf import setting

    interval = float(setting("SWEEP_INTERVAL_SECONDS"))
    # A sweep that waited longer than one interval is stale: the next one will do.
    sender.add_periodic_task(interval, sender.signature(SWEEP_TASK), name="sweep due deliveries", expires=interval)
