"""Handing deliveries to the broker. The broker is only a doorbell: losing a message loses nothing."""

import logging
from datetime import datetime

from kombu.exceptions import OperationalError

from webhookhub.celery import SEND_TASK, app
from webhookhub.conf import setting

logger = logging.getLogger(__name__)


def hand_off(delivery_ids: list[int], lease_until: datetime) -> int:
    """Enqueue send tasks in batches; returns how many ids were enqueued.

    If the broker is unreachable the deliveries stay leased until ``lease_until``,
    after which the sweeper enqueues them again.
    """
    size = setting("DELIVERY_BATCH_SIZE")
    token = lease_until.isoformat()
    sent = 0
    for start in range(0, len(delivery_ids), size):
        batch = delivery_ids[start : start + size]
        try:
            app.send_task(SEND_TASK, args=[batch, token])
        except (OperationalError, OSError) as exc:
            logger.warning(
                "Broker unreachable (%s); %d deliveries wait for the sweeper after %s.",
                type(exc).__name__,
                len(delivery_ids) - start,
                token,
            )
            break
        sent += len(batch)
    return sent
