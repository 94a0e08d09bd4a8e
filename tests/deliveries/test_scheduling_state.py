"""What an endpoint's scheduling state says about it (``deliveries.selectors``): the adaptive limit in words,
and the summary the admin and the API show, from real schedule rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.adaptive import START_LIMIT, Trouble
from deliveries.models import Delivery, EndpointSchedule
from deliveries.selectors import LIMITED_BY_WORDS, concurrency_text, scheduling_state
from subscriptions.models import Endpoint
from tests.factories import delivery_to, endpoint_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("limit", "limited_by", "limited_at", "expected"),
    [
        (6, "429", 7, "sending 6 at a time, limited by: 429s at 7"),
        (4, "latency", 9, "sending 4 at a time, limited by: slow answers at 9"),
        (2, "timeout", 5, "sending 2 at a time, limited by: timeouts at 5"),
        (1, "refused", 3, "sending 1 at a time, limited by: refused connections at 3"),
        (2, "503", 4, "sending 2 at a time, limited by: 503s at 4"),
        (8, "", None, "sending up to 8 at a time (its ceiling)"),
        (8, "429", 12, "sending up to 8 at a time (its ceiling)"),  # back at the ceiling: nothing holds it down
        (12, "", None, "sending up to 8 at a time (its ceiling)"),  # max_in_flight lowered below what it learnt
        (4, "", None, "ramping up: 4 at a time of up to 8"),
        (None, "", None, f"starts at {START_LIMIT} at a time, up to 8"),
    ],
)
def test_the_adaptive_limit_in_words(limit, limited_by, limited_at, expected):
    text = concurrency_text(adaptive=True, ceiling=8, limit=limit, limited_by=limited_by, limited_at=limited_at)

    assert text == expected


def test_every_cause_the_adaptive_core_records_has_its_own_words():
    causes = {cause.value: concurrency_text(adaptive=True, ceiling=8, limit=2, limited_by=cause) for cause in Trouble}

    assert set(LIMITED_BY_WORDS) == set(causes)
    assert len(set(causes.values())) == len(Trouble)


def test_a_fixed_limit_ignores_what_the_adaptive_core_last_wrote():
    text = concurrency_text(adaptive=False, ceiling=8, limit=3, limited_by="429", limited_at=7)

    assert text == "up to 8 at a time (fixed)"


def test_a_ceiling_below_the_start_starts_at_the_ceiling():
    assert concurrency_text(adaptive=True, ceiling=1, limit=None) == "starts at 1 at a time, up to 1"


def test_the_state_reads_the_adaptive_limit_the_owner_wrote(tenant):
    endpoint = endpoint_for(tenant, max_in_flight=16)
    EndpointSchedule.objects.create(
        endpoint=endpoint, concurrency_limit=6, concurrency_limited_by="429", concurrency_limited_at=7
    )

    state = scheduling_state(endpoint, now=timezone.now())

    assert (state.adaptive, state.concurrency_limit, state.limited_by, state.limited_at) == (True, 6, "429", 7)
    assert state.concurrency == "sending 6 at a time, limited by: 429s at 7"
    assert state.summary == "0 being sent, 0 pending; sending 6 at a time, limited by: 429s at 7"


def test_an_endpoint_without_a_schedule_row_has_not_learnt_its_limit(tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)

    state = scheduling_state(endpoint, now=timezone.now())

    assert (state.concurrency_limit, state.limited_by, state.limited_at) == (None, "", None)
    assert state.concurrency == f"starts at {START_LIMIT} at a time, up to 8"


def test_a_fixed_endpoint_says_so(tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    Endpoint.objects.filter(pk=endpoint.pk).update(adaptive_concurrency=False)
    EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=3, concurrency_limited_by="timeout")
    endpoint.refresh_from_db()

    state = scheduling_state(endpoint, now=timezone.now())

    assert state.adaptive is False
    assert state.concurrency == "up to 8 at a time (fixed)"


def test_the_summary_puts_an_open_circuit_first(tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    opened = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        down_in_a_row=5,
        circuit_opened_at=opened,
        next_probe_at=opened + timedelta(minutes=6),
        concurrency_limit=1,
        concurrency_limited_by="refused",
        concurrency_limited_at=2,
    )
    retrying = delivery_to(endpoint)
    Delivery.objects.filter(pk=retrying.pk).update(attempt_count=3)

    summary = scheduling_state(endpoint, now=timezone.now()).summary

    assert summary == (
        f"circuit open since {opened:%Y-%m-%d %H:%M:%S} UTC, next probe {opened + timedelta(minutes=6):%H:%M:%S} UTC; "
        "0 being sent, 1 pending; sending 1 at a time, limited by: refused connections at 2"
    )


def test_the_summary_puts_a_pause_first_while_it_lasts(tenant):
    endpoint = endpoint_for(tenant, max_in_flight=8)
    now = timezone.now()
    until = now.replace(microsecond=0) + timedelta(minutes=2)
    schedule = EndpointSchedule.objects.create(
        endpoint=endpoint, paused_until=until, pause_reason="Retry-After: 120", concurrency_limit=8
    )

    paused = scheduling_state(endpoint, now=now).summary
    schedule.paused_until = now - timedelta(seconds=1)
    schedule.save()
    over = scheduling_state(endpoint, now=now).summary

    assert paused.startswith(f"paused until {until:%Y-%m-%d %H:%M:%S} UTC (Retry-After: 120); ")
    assert paused.endswith("sending up to 8 at a time (its ceiling)")
    assert over == "0 being sent, 0 pending; sending up to 8 at a time (its ceiling)"
