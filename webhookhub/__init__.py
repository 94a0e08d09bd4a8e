"""webhookhub: outbound webhook delivery. Application code calls ``from webhookhub import publish`` (and
``publish_many`` for up to 100 events in one transaction)."""

from typing import Any

from webhookhub.celery import app as celery_app

__all__ = ["celery_app", "publish", "publish_many"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (settings, Celery) does not load models.
    if name == "publish":
        from deliveries.services.publishing import publish

        return publish
    if name == "publish_many":
        from deliveries.services.batch_publishing import publish_many

        return publish_many
    raise AttributeError(f"module 'webhookhub' has no attribute {name!r}")
