"""Retention: old events whose deliveries are all finished go with their deliveries and attempts; pending never."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from deliveries.models import Attempt, AttemptOutcome, AttemptRollup, Delivery, DeliveryStatus, SweepTurn
from deliveries.services.retention import PURGE_BATCH_EVENTS, count_purgeable, purge
from deliveries.services.sweeping import sweep
from events.models import Event
from tests.factories import TenantFactory, endpoint_for
from tests.support.numbers import record_stats
from webhookhub import publish

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def aged(tenant):
    """``aged(days, *statuses, tenant=...)``: an event ``days`` old with one delivery (and attempt) per status."""
    endpoints = {}

    def make(days: float, *statuses: str, owner=None) -> Event:
        owner = owner or tenant
        endpoint = endpoints.get(owner.pk) or endpoint_for(owner)
        endpoints[owner.pk] = endpoint
        event = publish(tenant=owner, type="message.received", data={"text": "hi"}, endpoint_ids=[])
        for status in statuses:
            finished = status != DeliveryStatus.PENDING
            delivery = Delivery.objects.create(
                event=event,
                endpoint=endpoint,
                status=status,
                attempt_count=1,
                next_attempt_at=None if finished else timezone.now(),
                completed_at=timezone.now() if finished else None,
            )
            attempt = Attempt.objects.create(
                delivery=delivery,
                number=1,
                started_at=timezone.now(),
                duration_ms=5,
                status_code=200,
                outcome=AttemptOutcome.SUCCESS if status == DeliveryStatus.SUCCEEDED else AttemptOutcome.RETRY,
            )
            record_stats([attempt], now=timezone.now())
        Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - days * DAY)
        return event

    return make


def _exists(event: Event) -> bool:
    return Event.objects.filter(pk=event.pk).exists()


def test_old_finished_events_go_with_their_deliveries_and_attempts(aged):
    gone = aged(40, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)

    purged = purge(before=timezone.now() - 30 * DAY)

    assert (purged.events, purged.deliveries, purged.attempts) == (1, 3, 3)
    assert not _exists(gone)
    assert not Delivery.objects.filter(event_id=gone.pk).exists()
    assert not Attempt.objects.filter(delivery__event_id=gone.pk).exists()


def test_anything_pending_stays_whatever_its_age(aged):
    waiting = aged(400, DeliveryStatus.PENDING)
    half_done = aged(400, DeliveryStatus.SUCCEEDED, DeliveryStatus.PENDING)
    Delivery.objects.filter(event=waiting).update(lease_until=timezone.now() + timedelta(seconds=30))  # in flight

    assert purge(before=timezone.now() - 30 * DAY).events == 0
    assert _exists(waiting) and _exists(half_done)
    assert Delivery.objects.filter(event=half_done).count() == 2


def test_recent_events_stay(aged):
    recent = aged(10, DeliveryStatus.SUCCEEDED)

    purge(before=timezone.now() - 30 * DAY)

    assert _exists(recent)


def test_the_rollups_are_not_touched(aged):
    aged(40, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
    before = list(AttemptRollup.objects.order_by("pk").values())

    purge(before=timezone.now() - 30 * DAY)

    assert list(AttemptRollup.objects.order_by("pk").values()) == before and before


def test_the_sweeper_purges_past_the_retention_period(aged, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETENTION_DAYS": 30}
    old, recent = aged(31, DeliveryStatus.SUCCEEDED), aged(29, DeliveryStatus.SUCCEEDED)
    SweepTurn.objects.all().delete()

    assert sweep() is not None

    assert not _exists(old) and _exists(recent)


# --- manage.py purge ----------------------------------------------------------------------------


def _purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_says_what_would_go_and_deletes_nothing(aged):
    old = aged(40, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)

    output = _purge("--older-than", "30", "--dry-run")

    assert "Would delete 1 event(s), 2 delivery(ies), 2 attempt(s) older than 30 day(s)" in output
    assert "Nothing was deleted" in output
    assert _exists(old)


def test_a_real_run_reports_progress_and_a_summary(aged):
    for _ in range(3):
        aged(40, DeliveryStatus.SUCCEEDED)

    output = _purge("--older-than", "30")

    assert "purged 3 of 3 event(s)" in output  # plain progress lines when not on a terminal
    assert "Deleted 3 event(s), 3 delivery(ies), 3 attempt(s) older than 30 day(s)." in output
    assert not Event.objects.exists()


def test_a_tenant_limits_the_purge_to_its_events(aged, tenant):
    other = TenantFactory()
    mine, theirs = aged(40, DeliveryStatus.SUCCEEDED), aged(40, DeliveryStatus.SUCCEEDED, owner=other)

    _purge("--older-than", "30", "--tenant", tenant.slug)

    assert not _exists(mine) and _exists(theirs)
    assert count_purgeable(before=timezone.now() - 30 * DAY).events == 1


@pytest.mark.parametrize("days", ["0", "-3", "x", "1.5", ""])
def test_days_must_be_a_positive_whole_number(aged, days):
    old = aged(40, DeliveryStatus.SUCCEEDED)

    with pytest.raises(CommandError, match="positive whole number of days"):
        _purge("--older-than", days)

    assert _exists(old)


@pytest.mark.parametrize("busy", ["0", "101", "x", "12.5"])
def test_busy_must_be_a_percentage(aged, busy):
    old = aged(40, DeliveryStatus.SUCCEEDED)

    with pytest.raises(CommandError, match="--busy must be a whole percentage from 1 to 100"):
        _purge("--older-than", "30", "--busy", busy)

    assert _exists(old)


def test_a_paced_purge_pauses_between_batches(aged, monkeypatch):
    for _ in range(3):
        aged(40, DeliveryStatus.SUCCEEDED)
    pauses = []
    monkeypatch.setattr("deliveries.services.retention.sleep", pauses.append)

    purged = purge(before=timezone.now() - 30 * DAY, size=1, busy_share=0.25)

    assert purged.events == 3
    assert len(pauses) == 3 and all(pause > 0 for pause in pauses)  # three times the batch's own time


def test_the_sweeper_purges_batch_after_batch_within_its_share_of_the_interval(aged, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETENTION_DAYS": 30, "SWEEP_INTERVAL_SECONDS": 60}
    old = [aged(31, DeliveryStatus.SUCCEEDED) for _ in range(PURGE_BATCH_EVENTS + 5)]
    SweepTurn.objects.all().delete()

    assert sweep() is not None

    assert not any(_exists(event) for event in old)  # more than one batch in one turn


def test_a_trigger_request_keeps_its_log_line_when_its_event_is_purged(aged, tenant):
    from events.models import TriggerOutcome, TriggerRequest
    from tests.web.triggers.support import make_trigger

    old = aged(40, DeliveryStatus.SUCCEEDED)
    trigger = make_trigger(tenant).trigger
    logged = TriggerRequest.objects.create(
        trigger=trigger, received_at=timezone.now(), status_code=202, outcome=TriggerOutcome.CAPTURED, event=old
    )

    purge(before=timezone.now() - 30 * DAY)

    logged.refresh_from_db()
    assert not _exists(old) and logged.event_id is None
