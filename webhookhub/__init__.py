"""webhookhub: outbound webhook delivery. Application code calls ``from webhookhub import publish``."""

from typing import Any

from webhookhub.celery import app as celery_app

__all__ = ["celery_app", "publish"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (settings, Celery) does not load models.
    if name == "publish":
        from deliveries.services.publishing import publish

        return publish
    raise AttributeError(f"module 'webhookhub' has no attribute {name!r}")
