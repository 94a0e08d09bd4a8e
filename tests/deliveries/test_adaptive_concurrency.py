"""Adaptive concurrency decisions (``deliveries.adaptive``), pure: tables, then simulated receivers on a fake clock.

The real worker against real receivers is in tests/e2e/test_adaptive_e2e.py.
"""

import heapq

import pytest

from deliveries.adaptive import (
    PROBE_WINDOWS,
    START_LIMIT,
    Answer,
    ConcurrencyLimit,
)

FAST = Answer(200, "", 10)


def _at_limit(limit: ConcurrencyLimit, answer: Answer, times: int = 1) -> None:
    """``times`` requests started with the limit's worth open, each answered ``answer``."""
    for _ in range(times):
        limit.answered(limit.started(limit.limit), answer)


def test_it_starts_low_and_each_fast_success_at_the_limit_adds_one_until_the_ceiling():
    limit = ConcurrencyLimit(ceiling=5)
    assert limit.limit == START_LIMIT

    _at_limit(limit, FAST, times=10)

    assert limit.state == (5, "", None)


def test_a_success_of_a_request_that_started_below_the_limit_does_not_grow_it():
    limit = ConcurrencyLimit(ceiling=32)

    for _ in range(50):
        limit.answered(limit.started(1), FAST)  # light traffic: one open at a time

    assert limit.limit == START_LIMIT


@pytest.mark.parametrize(
    ("answer", "limited_by"),
    [
        (Answer(429, "", 10), "429"),
        (Answer(503, "", 10), "503"),
        (Answer(None, "timeout", 15000), "timeout"),
        (Answer(None, "refused", 1), "refused"),
    ],
)
def test_trouble_halves_the_limit_and_says_what_and_at_how_many_open(answer, limited_by):
    limit = ConcurrencyLimit(ceiling=32, limit=12)

    limit.answered(limit.started(11), answer)

    assert limit.state == (6, limited_by, 11)  # the limit halved; the level is the 11 open then


@pytest.mark.parametrize(
    "answer", [Answer(500, "", 10), Answer(404, "", 10), Answer(None, "", 3)], ids=["500", "404", "dns or tls"]
)
def test_answers_that_say_nothing_of_load_neither_cut_nor_grow(answer):
    limit = ConcurrencyLimit(ceiling=32, limit=6)

    _at_limit(limit, answer, times=20)

    assert limit.state == (6, "", None)


def test_it_never_goes_below_one():
    limit = ConcurrencyLimit(ceiling=8, limit=1)

    _at_limit(limit, Answer(429, "", 5), times=5)

    assert limit.limit == 1


def test_answers_to_requests_started_before_a_cut_do_not_cut_again():
    limit = ConcurrencyLimit(ceiling=32, limit=16)
    tickets = [limit.started(16) for _ in range(16)]  # a burst, all answered 429

    for ticket in tickets:
        limit.answered(ticket, Answer(429, "", 5))

    assert limit.limit == 8
    limit.answered(limit.started(8), Answer(429, "", 5))  # news from the new round cuts again
    assert limit.limit == 4


def test_requests_open_at_a_cut_that_succeed_fast_grow_it_back_to_below_the_trouble():
    limit = ConcurrencyLimit(ceiling=32, limit=5)
    limit.answered(limit.started(1), FAST)  # the baseline: 10 ms
    open_at_cut = [limit.started(n) for n in range(1, 6)]

    limit.answered(open_at_cut[4], Answer(429, "", 1), open_now=5)
    assert limit.state == (2, "429", 5)
    limit.answered(open_at_cut[0], Answer(200, "", 900))  # slow: not evidence the receiver copes
    assert limit.limit == 2
    for ticket in open_at_cut[1:4]:
        limit.answered(ticket, FAST)

    assert limit.state == (4, "429", 5)  # the receiver took 4 at once: back there, not to the 5 that brought 429s


def test_trouble_is_put_at_the_most_open_when_the_request_started_or_was_answered():
    limit = ConcurrencyLimit(ceiling=32, limit=5)
    ticket = limit.started(4)  # another thread's request, started after it, reached the receiver first

    limit.answered(ticket, Answer(429, "", 1), open_now=5)

    assert limit.state == (2, "429", 5)


def test_after_a_cut_it_grows_back_fast_to_below_the_trouble_then_probes_it_rarely():
    limit = ConcurrencyLimit(ceiling=32, limit=8)
    limit.answered(limit.started(8), Answer(429, "", 5))
    assert limit.limit == 4

    _at_limit(limit, FAST, times=3)
    assert limit.limit == 7  # one per success up to below the 8 that brought the 429s

    _at_limit(limit, FAST, times=7 * PROBE_WINDOWS - 1)
    assert limit.limit == 7
    _at_limit(limit, FAST)
    assert limit.state == (8, "429", 8)  # probing the level that brought trouble

    _at_limit(limit, FAST, times=8)  # a whole window at 8 without trouble: the level is forgotten
    assert limit.state == (9, "", None)


def test_answers_much_slower_than_the_baseline_cut_and_one_stray_slow_answer_does_not():
    limit = ConcurrencyLimit(ceiling=32, limit=10)
    _at_limit(limit, Answer(200, "", 20), times=30)
    grown = limit.limit

    _at_limit(limit, Answer(200, "", 120))  # one stray: the recent average moves a quarter of the way
    assert limit.limit == grown

    _at_limit(limit, Answer(200, "", 400))
    assert limit.limited_by == "latency" and limit.limit == grown // 2


def test_a_receiver_that_became_slower_for_good_is_learnt_and_the_limit_grows_again():
    limit = ConcurrencyLimit(ceiling=8, limit=8)
    _at_limit(limit, Answer(200, "", 10), times=20)

    _at_limit(limit, Answer(200, "", 300), times=400)

    assert limit.limit == 8  # cut at first, then the baseline caught up and it grew back


def test_a_new_owner_starts_where_the_last_left_it_and_a_lower_ceiling_caps_it():
    limit = ConcurrencyLimit(ceiling=32, limit=9, limited_by="latency", limited_at=10)
    assert limit.state == (9, "latency", 10)

    limit.set_ceiling(4)
    assert limit.state == (4, "", None)  # the level of trouble is above the ceiling now: forgotten


def test_a_new_owner_of_an_endpoint_with_no_trouble_on_record_keeps_ramping_fast():
    limit = ConcurrencyLimit(ceiling=32, limit=START_LIMIT)  # what a first owner writes back after a trickle

    _at_limit(limit, FAST, times=10)

    assert limit.limit == START_LIMIT + 10  # one per fast success, not one per window


def test_a_stored_limit_below_one_starts_at_one():
    assert ConcurrencyLimit(ceiling=8, limit=0).limit == 1


# --- simulated receivers ---------------------------------------------------------------------------------------
def _simulate(limit: ConcurrencyLimit, requests: int, answer_for) -> tuple[list[Answer], list[int], float]:
    """Send ``requests`` through ``limit`` to a receiver: ``answer_for(open)`` answers a request that arrives with
    ``open`` requests open (itself included) with (status, seconds). Returns the answers, the open count each
    request found, and the time it took."""
    now, sent, open_ = 0.0, 0, 0
    finishing: list[tuple[float, int, object, Answer]] = []
    answers: list[Answer] = []
    seen_open: list[int] = []
    sequence = 0
    while sent < requests or finishing:
        while sent < requests and open_ < limit.limit:
            open_ += 1
            sent += 1
            seen_open.append(open_)
            status, seconds = answer_for(open_)
            ticket = limit.started(open_)
            sequence += 1
            heapq.heappush(finishing, (now + seconds, sequence, ticket, Answer(status, "", int(seconds * 1000))))
        now, _, ticket, answer = heapq.heappop(finishing)
        open_ -= 1
        limit.answered(ticket, answer)  # type: ignore[arg-type]
        answers.append(answer)
    return answers, seen_open, now


def test_simulated_a_receiver_that_answers_429_above_4_open_gets_few_429s_and_near_its_capacity():
    limit = ConcurrencyLimit(ceiling=32)
    service = 0.020  # 4 open at 20 ms each: 200 requests/s at most

    answers, _, took = _simulate(limit, 2000, lambda open_: (429, 0.002) if open_ > 4 else (200, service))

    rejected = sum(answer.status_code == 429 for answer in answers)
    succeeded = len(answers) - rejected
    assert rejected / len(answers) <= 0.05
    assert succeeded / took >= 0.9 * (4 / service)
    assert limit.limit <= 4 or limit.limited_at == 5


def test_simulated_a_receiver_that_slows_down_above_8_open_settles_near_8():
    limit = ConcurrencyLimit(ceiling=32)

    _, seen_open, _ = _simulate(limit, 3000, lambda open_: (200, 0.5) if open_ > 8 else (200, 0.01))

    settled = seen_open[1000:]
    assert max(settled) <= 9
    assert sum(settled) / len(settled) >= 6.5


def test_simulated_a_fast_receiver_ramps_from_the_start_to_the_ceiling_within_a_few_round_trips():
    limit = ConcurrencyLimit(ceiling=32)

    _, seen_open, took = _simulate(limit, 400, lambda open_: (200, 0.005))

    assert limit.limit == 32
    assert seen_open.index(32) < 100
