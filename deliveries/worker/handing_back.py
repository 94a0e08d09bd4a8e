"""What a worker process gives back to the database: leases it will not use, endpoints it no longer needs."""

import logging
import time
from datetime import timedelta

from django.utils import timezone

from deliveries.services import wakeups
from deliveries.services.claims import give_up_ownership, with_due_work
from deliveries.services.sending import release_leases
from deliveries.worker.lanes import Lanes
from ground.db import DATABASE_UNAVAILABLE, refresh_connections

logger = logging.getLogger(__name__)


def give_back_unsent(lanes: Lanes) -> None:
    """Leases of deliveries a stopped lane will not send go back: they wait in the database, unattempted."""
    unsent = lanes.take_unsent()
    if not unsent:
        return
    refresh_connections()
    try:
        release_leases(unsent)
    except DATABASE_UNAVAILABLE as exc:  # their leases run out by themselves
        logger.warning("Giving back %d unsent deliveries failed (%s); their leases will run out.", len(unsent), exc)
    lanes.recorded(unsent)


def hand_back_idle(lanes: Lanes, *, owner: str, closing: bool = False) -> None:
    """Endpoints that had nothing leased for a while (or, closing, every endpoint) are handed back, so any
    worker can take their next work; a rate-limited one keeps its next free start for the next owner, and each
    the concurrency this owner learnt."""
    idle = lanes.give_up_idle(closing=closing)
    if not idle:
        return
    wall, clock = timezone.now(), time.monotonic()
    next_starts = {}
    learnt = {}
    for endpoint_id, lane in idle.items():
        seconds = lane.next_free_start(clock)
        next_starts[endpoint_id] = None if seconds is None else wall + timedelta(seconds=seconds)
        if (state := lane.unwritten_concurrency()) is not None:
            learnt[endpoint_id] = state
    refresh_connections()
    try:
        give_up_ownership(owner=owner, next_starts=next_starts, concurrency=learnt)
        if wakeups.notifying() and (due := with_due_work(list(next_starts), now=wall)):
            # Published meanwhile and named as this process's (or it is closing): now nobody's, say so.
            wakeups.notify(due)
    except DATABASE_UNAVAILABLE as exc:  # ownership lapses by itself with the leases
        logger.warning("Handing back %d endpoints failed (%s); their ownership will lapse.", len(idle), exc)
