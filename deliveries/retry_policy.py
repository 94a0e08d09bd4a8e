"""The one place that decides success, retry or final failure for an attempt. Pure: no I/O."""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from deliveries.models import AttemptOutcome

RETRY_AFTER_STATUSES = frozenset({429, 503})
logger = logging.getLogger(__name__)
_warned_missing: set[str] = set()  # schedule names already logged as gone, once per process


def schedule_for(retry_schedule: list[float] | str | None, config: dict[str, Any]) -> tuple[float, ...]:
    """The delays an endpoint's ``retry_schedule`` stands for: None, the deployment's ``RETRY_SCHEDULE``; a name,
    that operator-defined schedule (``RETRY_SCHEDULES``); a list, itself. A name the operator has since removed
    falls back to the deployment's schedule (logged once per name and process): deliveries keep being retried.

    Read at every decision, so a changed schedule (the endpoint's or the operator's) applies to the next retry
    decision of deliveries already pending; one past the new schedule's end fails at its next failure.
    """
    if retry_schedule is None:
        return tuple(config["RETRY_SCHEDULE"])
    if isinstance(retry_schedule, str):
        named = config.get("RETRY_SCHEDULES", {})
        if retry_schedule in named:
            return tuple(named[retry_schedule])
        if retry_schedule not in _warned_missing:
            _warned_missing.add(retry_schedule)
            logger.warning(
                "Retry schedule %r is no longer defined (WEBHOOKHUB RETRY_SCHEDULES); endpoints that chose it are "
                "retried on the deployment's RETRY_SCHEDULE.",
                retry_schedule,
            )
        return tuple(config["RETRY_SCHEDULE"])
    return tuple(retry_schedule)


@dataclass(frozen=True)
class Decision:
    outcome: str  # AttemptOutcome
    next_attempt_at: datetime | None = None
    disable_endpoint_reason: str | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def decide(
    *,
    attempt_number: int,
    status_code: int | None,
    retry_after: str | None,
    now: datetime,
    schedule: tuple[float, ...] | list[float],
    jitter: float,
    retry_after_cap: float,
    rng: random.Random | None = None,
) -> Decision:
    """Map the outcome of attempt ``attempt_number`` (1-based) to what happens next.

    ``status_code`` is None when no response arrived (timeout, connection error,
    refused address). 2xx succeeds; 410 fails at once and disables the endpoint;
    anything else retries on ``schedule`` (with +-``jitter``), 429/503 after their
    Retry-After (capped at ``retry_after_cap`` seconds), until the schedule is exhausted.
    The defaults of all three are the WEBHOOKHUB settings' (``ground.conf.DEFAULTS``), the one
    place they are written.
    """
    if status_code is not None and 200 <= status_code < 300:
        return Decision(AttemptOutcome.SUCCESS)
    if status_code == 410:
        return Decision(
            AttemptOutcome.FAIL, disable_endpoint_reason="The endpoint answered 410 Gone: it asked to stop receiving."
        )
    if attempt_number > len(schedule):
        return Decision(AttemptOutcome.FAIL)
    delay = float(schedule[attempt_number - 1])
    delay *= (rng or random).uniform(1 - jitter, 1 + jitter)
    if status_code in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            delay = min(asked, retry_after_cap)
    return Decision(AttemptOutcome.RETRY, next_attempt_at=now + timedelta(seconds=delay))
