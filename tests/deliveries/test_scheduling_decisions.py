"""Per-endpoint scheduling decisions (pure): what an owner may lease, when requests start, how health moves."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deliveries.pacing import (
    AHEAD_PER_SLOT,
    CIRCUIT_THRESHOLD,
    PROBE_BACKOFF_SECONDS,
    EndpointState,
    Health,
    Pacer,
    Signal,
    after_attempts,
    budget,
    signal_of,
    stops_sending,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
FREE = EndpointState(
    held=0,
    max_in_flight=8,
    rate_limit_per_s=None,
    paused_until=None,
    circuit_open=False,
    next_probe_at=None,
)
AHEAD = 8 * AHEAD_PER_SLOT


@pytest.mark.parametrize(
    ("state", "want", "count"),
    [
        (FREE, 1000, AHEAD),  # a bounded share ahead, however long the backlog
        (FREE, 3, 3),
        (replace(FREE, held=AHEAD - 3), 1000, 3),
        (replace(FREE, held=AHEAD), 1000, 0),  # enough in hand: the rest stays in the database
        (replace(FREE, max_in_flight=1), 100, AHEAD_PER_SLOT),
        (replace(FREE, rate_limit_per_s=5), 100, 5),  # about a second of its rate
        (replace(FREE, rate_limit_per_s=5, held=4), 100, 1),
        (replace(FREE, rate_limit_per_s=1000), 1000, AHEAD),  # never more than its share of slots
        (replace(FREE, paused_until=NOW + 30 * S), 10, 0),
        (replace(FREE, paused_until=NOW - S), 10, 10),  # the pause is over
        (replace(FREE, circuit_open=True, next_probe_at=NOW - S), 10, 1),  # one probe
        (replace(FREE, circuit_open=True, next_probe_at=NOW + 5 * S), 10, 0),
        (replace(FREE, circuit_open=True, next_probe_at=NOW - S, held=1), 10, 0),  # the probe is out
    ],
)
def test_what_an_owner_may_lease(state, want, count):
    assert budget(state, now=NOW, want=want).count == count


def test_an_endpoint_with_enough_in_hand_waits_for_answers_not_a_time():
    assert budget(replace(FREE, held=AHEAD), now=NOW, want=5).wake_at is None


def test_a_paused_endpoint_wakes_when_the_pause_ends():
    assert budget(replace(FREE, paused_until=NOW + 30 * S), now=NOW, want=5).wake_at == NOW + 30 * S


def test_an_open_circuit_wakes_for_its_probe():
    state = replace(FREE, circuit_open=True, next_probe_at=NOW + 5 * S)

    assert budget(state, now=NOW, want=5).wake_at == NOW + 5 * S


def test_the_pacer_never_opens_more_than_max_in_flight():
    pacer = Pacer(max_in_flight=2, rate_limit_per_s=None, next_start=0.0)
    pacer.start(0.0)
    pacer.start(0.0)

    assert pacer.start_at(0.0) is None  # full: an answer frees a slot
    pacer.finish()
    assert pacer.start_at(0.1) == 0.1


def test_the_pacer_spaces_starts_by_the_rate_from_where_it_was_left():
    pacer = Pacer(max_in_flight=100, rate_limit_per_s=4, next_start=10.5)

    assert pacer.start_at(10.0) == 10.5
    pacer.start(10.5)
    assert pacer.start_at(10.5) == 10.75
    assert pacer.start_at(11.0) == 11.0  # an idle endpoint saves up no burst


def test_no_one_second_window_holds_more_than_rate_plus_one_starts():
    pacer, starts, now = Pacer(max_in_flight=100, rate_limit_per_s=5, next_start=0.0), [], 0.0
    while now < 3.0:  # the owner looks every 7 ms, as answers and timers wake it
        at = pacer.start_at(now)
        if at is not None and at <= now:
            pacer.start(now)
            starts.append(now)
        now += 0.007
    busiest = max(sum(start <= other < start + 1 for other in starts) for start in starts)
    assert busiest <= 6
    assert len(starts) >= 14


@pytest.mark.parametrize(
    ("failures", "signal", "stops"),
    [
        (0, Signal.UP, False),
        (CIRCUIT_THRESHOLD - 2, Signal.DOWN, False),
        (CIRCUIT_THRESHOLD - 1, Signal.DOWN, True),  # this failure opens the circuit
        (CIRCUIT_THRESHOLD + 3, Signal.DOWN, True),  # a failed probe
        (0, Signal.PAUSE, True),
        (CIRCUIT_THRESHOLD - 1, Signal.UP, False),
    ],
)
def test_which_answers_stop_an_endpoints_lane_at_once(failures, signal, stops):
    assert stops_sending(Health(down_in_a_row=failures), signal) is stops


@pytest.mark.parametrize(
    ("status", "retry_after", "signal"),
    [
        (200, False, Signal.UP),
        (404, False, Signal.UP),  # it answered: not an outage
        (302, False, Signal.UP),
        (429, False, Signal.UP),
        (429, True, Signal.PAUSE),
        (503, True, Signal.PAUSE),
        (503, False, Signal.DOWN),
        (500, False, Signal.DOWN),
        (None, False, Signal.DOWN),  # refused, timed out, reset
    ],
)
def test_what_an_attempt_says_about_its_endpoint(status, retry_after, signal):
    assert signal_of(status, has_retry_after=retry_after) is signal


def test_consecutive_failures_open_the_circuit_with_a_first_probe_soon():
    health = after_attempts(Health(), [(Signal.DOWN, None)] * CIRCUIT_THRESHOLD, now=NOW)

    assert health.circuit_opened_at == NOW
    assert health.next_probe_at == NOW + PROBE_BACKOFF_SECONDS[0] * S


def test_fewer_failures_keep_it_closed():
    health = after_attempts(Health(), [(Signal.DOWN, None)] * (CIRCUIT_THRESHOLD - 1), now=NOW)

    assert health.circuit_opened_at is None and health.down_in_a_row == CIRCUIT_THRESHOLD - 1


def test_failed_probes_back_off_up_to_the_cap():
    health = Health(down_in_a_row=CIRCUIT_THRESHOLD, circuit_opened_at=NOW - 60 * S)
    waits = []
    for _ in range(8):
        health = after_attempts(health, [(Signal.DOWN, None)], now=NOW)
        waits.append((health.next_probe_at - NOW).total_seconds())

    assert waits == [10, 20, 40, 60, 60, 60, 60, 60]
    assert health.circuit_opened_at == NOW - 60 * S  # open since the first time


def test_the_first_answer_closes_the_circuit():
    health = Health(down_in_a_row=9, circuit_opened_at=NOW - 60 * S, next_probe_at=NOW)

    assert after_attempts(health, [(Signal.UP, None)], now=NOW) == Health()


def test_retry_after_pauses_the_endpoint_until_the_latest_asked():
    health = after_attempts(Health(), [(Signal.PAUSE, NOW + 30 * S), (Signal.PAUSE, NOW + 10 * S)], now=NOW)

    assert health.paused_until == NOW + 30 * S
    assert health.down_in_a_row == 0  # asking to wait is not failing
