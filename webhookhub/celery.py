"""The Celery app: ``celery -A webhookhub worker`` sends (and sweeps), ``celery -A webhookhub beat`` also sweeps."""

import os

from celery import Celery, Task
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")

app = Celery("webhookhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _django_logging(**kwargs: object) -> None:
    """With LOG_FORMAT=json, worker and beat log through Django's LOGGING (one JSON object per line)
    instead of Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


if os.environ.get("LOG_FORMAT") == "json":
    setup_logging.connect(_django_logging, weak=False)


@app.on_after_configure.connect
def _schedule_sweeper(sender: Celery, **kwargs: object) -> None:
    from ground.conf import setting
    from ground.task_names import SWEEP_TASK, WARN_EXPIRING_CERTIFICATES_TASK

    interval = float(setting("SWEEP_INTERVAL_SECONDS"))
    # A sweep that waited longer than one interval is stale: the next one will do.
    sender.add_periodic_task(interval, sender.signature(SWEEP_TASK), name="sweep due deliveries", expires=interval)
    sender.add_periodic_task(
        3600.0,
        sender.signature(WARN_EXPIRING_CERTIFICATES_TASK),
        name="warn about expiring client certificates",
        expires=3600.0,
    )


@task_prerun.connect
@task_postrun.connect
def _refresh_database_connections(sender: Task, **kwargs: object) -> None:
    """Around every task, as Django does around every request, so a database restart heals itself.

    (Celery's own Django fixup closes connections only every ``CELERY_DB_REUSE_MAX`` tasks.)
    """
    if not getattr(sender.request, "is_eager", False):
        from ground.db import refresh_connections

        refresh_connections()
