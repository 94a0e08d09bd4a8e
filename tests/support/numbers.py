"""Attempts counted as the recording transaction counts them, for tests that make Attempt rows by hand."""

from collections.abc import Sequence
from datetime import datetime

from deliveries.models import Attempt
from deliveries.numbers.tallying import add_to_rollups, tally
from deliveries.services.recording import requests_seen
from subscriptions.health import record_requests


def record_stats(attempts: Sequence[Attempt], *, now: datetime) -> None:
    """What ``deliveries.services.recording.write`` adds for these attempts (their deliveries' endpoints loaded):
    the dashboard's rollups, and each endpoint's health (which may auto-disable it)."""
    add_to_rollups(tally((attempt.delivery.endpoint.tenant_id, attempt) for attempt in attempts))
    record_requests(requests_seen([attempt for attempt in attempts if attempt.request_made]), now=now)
