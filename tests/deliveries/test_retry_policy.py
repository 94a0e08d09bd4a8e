import random
from datetime import UTC, datetime, timedelta

import pytest

from deliveries.models import AttemptOutcome
from deliveries.retry_policy import decide, parse_retry_after
from ground.conf import DEFAULTS

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)  # a Sunday
HOUR = 3600


DEFAULT_POLICY = {
    "schedule": DEFAULTS["RETRY_SCHEDULE"],
    "jitter": DEFAULTS["RETRY_JITTER"],
    "retry_after_cap": DEFAULTS["RETRY_AFTER_MAX_SECONDS"],
}


def _decide(status_code, attempt_number=1, retry_after=None, **kwargs):
    """``decide`` with the deployment defaults (``ground.conf.DEFAULTS``) unless a test overrides one."""
    policy = {**DEFAULT_POLICY, **kwargs}
    return decide(attempt_number=attempt_number, status_code=status_code, retry_after=retry_after, now=NOW, **policy)


def _delay(decision) -> float:
    return (decision.next_attempt_at - NOW).total_seconds()


@pytest.mark.parametrize("status_code", [200, 201, 204, 299])
def test_2xx_succeeds(status_code):
    decision = _decide(status_code)

    assert decision.outcome == AttemptOutcome.SUCCESS
    assert decision.next_attempt_at is None
    assert decision.disable_endpoint_reason is None


def test_410_fails_at_once_and_asks_to_disable_the_endpoint():
    decision = _decide(410)

    assert decision.outcome == AttemptOutcome.FAIL
    assert decision.next_attempt_at is None
    assert "410" in decision.disable_endpoint_reason


@pytest.mark.parametrize(
    "status_code", [None, 300, 301, 302, 304, 307, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504]
)
def test_other_outcomes_retry_without_disabling(status_code):
    decision = _decide(status_code)

    assert decision.outcome == AttemptOutcome.RETRY
    assert decision.next_attempt_at > NOW
    assert decision.disable_endpoint_reason is None


@pytest.mark.parametrize(
    ("attempt_number", "delay"),
    [(1, 5), (2, 5 * 60), (3, 30 * 60), (4, 2 * HOUR), (5, 5 * HOUR), (6, 10 * HOUR), (7, 10 * HOUR)],
)
def test_retry_waits_the_schedule_entry_of_the_attempt(attempt_number, delay):
    decision = _decide(500, attempt_number, jitter=0)

    assert decision.next_attempt_at == NOW + timedelta(seconds=delay)


def test_the_default_policy_is_the_documented_one():
    assert DEFAULTS["RETRY_SCHEDULE"] == [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]
    assert (DEFAULTS["RETRY_JITTER"], DEFAULTS["RETRY_AFTER_MAX_SECONDS"]) == (0.2, 3600)


def test_jitter_is_drawn_from_the_given_rng():
    decision = _decide(500, 2, rng=random.Random(42))

    expected = 300 * random.Random(42).uniform(0.8, 1.2)
    assert _delay(decision) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("attempt_number", "base"), [(1, 5), (2, 300), (4, 2 * HOUR), (7, 10 * HOUR)])
def test_jitter_stays_within_twenty_percent(attempt_number, base):
    delays = [_delay(_decide(500, attempt_number, rng=random.Random(seed))) for seed in range(300)]

    assert min(delays) >= 0.8 * base
    assert max(delays) <= 1.2 * base
    assert min(delays) < 0.85 * base  # it really spreads over the range
    assert max(delays) > 1.15 * base


def test_seventh_attempt_still_retries_after_ten_hours():
    decision = _decide(500, 7, jitter=0)

    assert decision.outcome == AttemptOutcome.RETRY
    assert decision.next_attempt_at == NOW + timedelta(hours=10)


@pytest.mark.parametrize("status_code", [None, 302, 429, 500, 503])
def test_eighth_attempt_fails_when_the_default_schedule_is_exhausted(status_code):
    decision = _decide(status_code, 8, retry_after="10")

    assert decision.outcome == AttemptOutcome.FAIL
    assert decision.next_attempt_at is None
    assert decision.disable_endpoint_reason is None


def test_a_custom_schedule_is_exhausted_after_its_length():
    assert _decide(500, 2, schedule=[1, 2], jitter=0).next_attempt_at == NOW + timedelta(seconds=2)
    assert _decide(500, 3, schedule=[1, 2], jitter=0).outcome == AttemptOutcome.FAIL


@pytest.mark.parametrize("status_code", [429, 503])
def test_retry_after_seconds_are_honoured(status_code):
    decision = _decide(status_code, 1, retry_after="120")

    assert decision.outcome == AttemptOutcome.RETRY
    assert decision.next_attempt_at == NOW + timedelta(seconds=120)


@pytest.mark.parametrize("status_code", [429, 503])
def test_retry_after_http_date_is_honoured(status_code):
    decision = _decide(status_code, 1, retry_after="Sun, 22 Nov 2026 10:02:30 GMT")

    assert decision.next_attempt_at == NOW + timedelta(seconds=150)


@pytest.mark.parametrize("retry_after", ["7200", "Mon, 23 Nov 2026 10:00:00 GMT"])
def test_retry_after_is_capped(retry_after):
    decision = _decide(429, 1, retry_after=retry_after, retry_after_cap=3600)

    assert decision.next_attempt_at == NOW + timedelta(seconds=3600)


def test_retry_after_is_ignored_on_500():
    decision = _decide(500, 1, retry_after="120", jitter=0)

    assert decision.next_attempt_at == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("retry_after", [None, "", "soon", "-5", "1.5", "12 seconds", "Sun, 22 Nov 2026 10:02:30"])
def test_invalid_retry_after_falls_back_to_the_schedule(retry_after):
    decision = _decide(429, 2, retry_after=retry_after, jitter=0)

    assert decision.next_attempt_at == NOW + timedelta(seconds=300)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Sun, 22 Nov 2026 10:02:30 GMT", 150.0),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0.0),  # already past: no wait
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("Sun, 22 Nov 2026 10:02:30", None),  # no zone: ambiguous
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_with_a_non_ascii_digit_is_ignored():
    assert parse_retry_after("\u00b2", NOW) is None
