"""The numbers the dashboard reads: rollups and endpoint health kept as attempts are recorded, rebuilt, pruned."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from deliveries.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Attempt,
    AttemptOutcome,
    AttemptRollup,
    Delivery,
    Granularity,
)
from deliveries.numbers.maintenance import prune_rollups, rebuild_stats
from deliveries.numbers.stats import latency_percentile
from ground.conf import setting
from ground.task_names import NOTIFY_DISABLED_TASK
from subscriptions.models import EndpointHealth
from subscriptions.services import disable_endpoint, enable_endpoint
from tests.factories import delivery_to, endpoint_for
from tests.support.broker import captured_queue
from tests.support.numbers import record_stats
from tests.support.recording import record

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, 7, 30, tzinfo=UTC)  # in the 12:05 five-minute bucket and the 12:00 hour


@pytest.fixture
def delivery(endpoint) -> Delivery:
    return Delivery.objects.select_related("endpoint").get(pk=delivery_to(endpoint).pk)


def _attempt(delivery, *, at=T0, outcome=AttemptOutcome.SUCCESS, status=200, ms=20, error="", number=1) -> Attempt:
    return Attempt(
        delivery=delivery,
        number=number,
        started_at=at,
        duration_ms=ms,
        status_code=status,
        error=error,
        outcome=outcome,
    )


def _record(attempts: list[Attempt]) -> None:
    record_stats(attempts, now=timezone.now())  # as the recorder does with each batch


def _success(delivery, **kwargs) -> Attempt:
    return _attempt(delivery, **kwargs)


def _failure(delivery, *, status=500, **kwargs) -> Attempt:
    return _attempt(delivery, outcome=AttemptOutcome.RETRY, status=status, error=f"HTTP {status}", **kwargs)


def _reached(*attempts: Attempt) -> list[Attempt]:
    return list(attempts)


def _not_reached(attempt: Attempt) -> list[Attempt]:
    attempt.request_made = False
    return [attempt]


def _row(endpoint, granularity, start) -> AttemptRollup:
    return AttemptRollup.objects.get(endpoint=endpoint, granularity=granularity, bucket_start=start)


def _counts(row: AttemptRollup) -> tuple:
    return row.successes, row.retries, row.failures, row.responses


# --- rollups ---------------------------------------------------------------------------------------------


def test_a_batch_adds_to_the_five_minute_and_the_hourly_bucket_of_its_attempts(tenant, endpoint, delivery):
    _record(
        _reached(
            _success(delivery),
            _failure(delivery, number=2),
            _attempt(delivery, outcome=AttemptOutcome.FAIL, status=404, number=3),
        )
    )

    fine = _row(endpoint, Granularity.FIVE_MINUTES, datetime(2025, 3, 1, 12, 5, tzinfo=UTC))
    hourly = _row(endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    assert _counts(fine) == _counts(hourly) == (1, 1, 1, 3)
    assert fine.tenant_id == hourly.tenant_id == tenant.pk
    assert AttemptRollup.objects.count() == 2


def test_a_second_batch_adds_to_the_same_rows_instead_of_overwriting_them(endpoint, delivery):
    _record(_reached(_success(delivery), _success(delivery, number=2)))

    _record(_reached(_failure(delivery, at=T0 + timedelta(minutes=1), number=3)))

    for granularity, start in (
        (Granularity.FIVE_MINUTES, datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),
        (Granularity.HOUR, datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
    ):
        assert _counts(_row(endpoint, granularity, start)) == (2, 1, 0, 3)
    assert AttemptRollup.objects.count() == 2


def test_attempts_in_different_five_minute_buckets_share_their_hourly_row(endpoint, delivery):
    _record(_reached(_success(delivery), _success(delivery, at=T0 + timedelta(minutes=30), number=2)))

    fine = AttemptRollup.objects.filter(endpoint=endpoint, granularity=Granularity.FIVE_MINUTES)
    assert sorted((row.bucket_start.minute, row.successes) for row in fine) == [(5, 1), (35, 1)]
    assert _row(endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, 0, tzinfo=UTC)).successes == 2


def test_each_endpoint_has_its_own_rows(tenant, endpoint, delivery):
    other = delivery_to(endpoint_for(tenant, name="billing"))

    _record(_reached(_success(delivery), _failure(other)))

    assert _counts(_row(endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, tzinfo=UTC))) == (1, 0, 0, 1)
    assert _counts(_row(other.endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, tzinfo=UTC))) == (0, 1, 0, 1)


def _histogram_after(delivery, *durations: int) -> list[int]:
    _record(_reached(*(_success(delivery, ms=ms, number=i + 1) for i, ms in enumerate(durations))))
    return _row(delivery.endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, tzinfo=UTC)).latency_counts()


def _only(index: int, count: int = 1) -> list[int]:
    return [count if i == index else 0 for i in range(len(LATENCY_COLUMNS))]


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [(0, 0), (5, 0), (10, 1), (100, 6), (15000, 17)],
    ids=["0ms", "5ms", "10ms", "100ms", "15000ms"],
)
def test_a_duration_exactly_at_a_bound_counts_in_that_bounds_bucket(delivery, duration, bucket):
    assert _histogram_after(delivery, duration) == _only(bucket)


@pytest.mark.parametrize(("duration", "bucket"), [(6, 1), (11, 2), (101, 7), (14999, 17)])
def test_a_duration_just_above_a_bound_counts_in_the_next_bucket(delivery, duration, bucket):
    assert _histogram_after(delivery, duration) == _only(bucket)


def test_durations_beyond_the_last_bound_count_in_the_open_last_bucket(delivery):
    assert _histogram_after(delivery, 15001, 60000, 600000) == _only(len(LATENCY_BOUNDS_MS), 3)


def test_attempts_without_a_status_code_count_in_outcomes_but_not_in_responses_or_latency(endpoint, delivery):
    no_answer = _attempt(delivery, outcome=AttemptOutcome.RETRY, status=None, ms=30000, error="timed out")

    _record(_reached(no_answer, _success(delivery, ms=20, number=2)))

    row = _row(endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, tzinfo=UTC))
    assert _counts(row) == (1, 1, 0, 1)
    assert sum(row.latency_counts()) == 1


# --- endpoint health -------------------------------------------------------------------------------------


def _health(endpoint) -> tuple:
    health = EndpointHealth.objects.get(endpoint=endpoint)
    return health.last_status_code, health.last_error, health.failed_in_a_row


def test_health_keeps_the_latest_attempts_time_status_and_error(endpoint, delivery):
    later = T0 + timedelta(seconds=5)
    # Out of order in the batch: the latest by start time wins.
    _record(_reached(_failure(delivery, status=503, at=later, number=2), _failure(delivery, status=500)))

    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert (health.last_attempt_at, health.last_status_code, health.last_error) == (later, 503, "HTTP 503")
    assert health.last_success_at is None


def test_consecutive_failures_grow_across_batches(endpoint, delivery):
    _record(_reached(_failure(delivery), _failure(delivery, number=2)))
    _record(_reached(_failure(delivery, at=T0 + timedelta(minutes=1), number=3)))

    assert _health(endpoint) == (500, "HTTP 500", 3)


def test_a_success_restarts_the_streak(endpoint, delivery):
    _record(_reached(_failure(delivery), _failure(delivery, number=2)))

    success_at = T0 + timedelta(minutes=1)
    _record(_reached(_success(delivery, at=success_at, number=3)))

    assert _health(endpoint) == (200, "", 0)
    assert EndpointHealth.objects.get(endpoint=endpoint).last_success_at == success_at


def test_failures_after_a_success_in_the_same_batch_start_a_new_streak(endpoint, delivery):
    _record(_reached(*(_failure(delivery, number=n) for n in (1, 2, 3))))

    _record(
        _reached(
            _failure(delivery, at=T0 + timedelta(minutes=1), number=4),
            _success(delivery, at=T0 + timedelta(minutes=2), number=5),
            _failure(delivery, status=502, at=T0 + timedelta(minutes=3), number=6),
            _failure(delivery, status=504, at=T0 + timedelta(minutes=4), number=7),
        )
    )

    assert _health(endpoint) == (504, "HTTP 504", 2)
    assert EndpointHealth.objects.get(endpoint=endpoint).last_success_at == T0 + timedelta(minutes=2)


def test_attempts_that_made_no_request_count_in_the_rollups_but_do_not_move_the_streak(endpoint, delivery):
    _record(_reached(_failure(delivery)))
    stalled = _attempt(
        delivery,
        outcome=AttemptOutcome.RETRY,
        status=None,
        error="Not sent: the endpoint is busy.",
        at=T0 + timedelta(minutes=1),
        number=2,
    )

    _record(_not_reached(stalled))

    assert _health(endpoint) == (500, "HTTP 500", 1)
    assert _counts(_row(endpoint, Granularity.HOUR, datetime(2025, 3, 1, 12, tzinfo=UTC))) == (0, 2, 0, 1)


def test_a_batch_of_only_attempts_that_made_no_request_creates_no_health(endpoint, delivery):
    _record(_not_reached(_attempt(delivery, outcome=AttemptOutcome.RETRY, status=None, error="Not sent: busy")))

    assert not EndpointHealth.objects.filter(endpoint=endpoint).exists()
    assert AttemptRollup.objects.filter(endpoint=endpoint).count() == 2


def test_health_keeps_the_first_500_characters_of_a_long_error(endpoint, delivery):
    _record(_reached(_attempt(delivery, outcome=AttemptOutcome.RETRY, status=None, error="x" * 2000)))

    assert EndpointHealth.objects.get(endpoint=endpoint).last_error == "x" * 500


# --- the auto-disable clock -----------------------------------------------------------------------------

PERIOD = timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS"))


def _failing_since(endpoint):
    return EndpointHealth.objects.get(endpoint=endpoint).failing_since


def test_the_first_failure_starts_the_clock_when_recorded_and_later_failures_keep_it(endpoint, delivery):
    recorded_at = T0 + timedelta(seconds=3)
    record_stats(_reached(_failure(delivery)), now=recorded_at)
    record_stats(_reached(_failure(delivery, at=T0 + timedelta(hours=1), number=2)), now=T0 + timedelta(hours=1))

    assert _failing_since(endpoint) == recorded_at


def test_a_success_stops_the_clock_and_the_next_failure_starts_it_again(endpoint, delivery):
    record_stats(_reached(_failure(delivery)), now=T0)
    record_stats(_reached(_success(delivery, at=T0 + timedelta(minutes=1), number=2)), now=T0 + timedelta(minutes=1))
    assert _failing_since(endpoint) is None

    again = T0 + timedelta(minutes=2)
    record_stats(_reached(_failure(delivery, at=again, number=3)), now=again)

    assert _failing_since(endpoint) == again


def test_a_failure_recorded_late_but_older_than_the_last_success_starts_no_clock(endpoint, delivery):
    record_stats(_reached(_success(delivery, at=T0 + timedelta(seconds=30), number=2)), now=T0 + timedelta(seconds=31))

    record_stats(_reached(_failure(delivery, at=T0, number=1)), now=T0 + timedelta(seconds=40))

    assert _failing_since(endpoint) is None
    assert _health(endpoint) == (200, "", 0)


def test_failing_past_the_period_disables_and_queues_the_notice_on_commit(
    tenant, endpoint, delivery, django_capture_on_commit_callbacks
):
    other = endpoint_for(tenant, name="billing")
    other_delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_to(other).pk)
    record_stats(_reached(_failure(delivery)), now=T0)
    record_stats(_reached(_failure(other_delivery)), now=T0 + timedelta(hours=2))
    later = T0 + PERIOD + timedelta(hours=1)

    with captured_queue() as queue:
        with django_capture_on_commit_callbacks(execute=True):
            record_stats(
                _reached(_failure(delivery, at=later, number=2), _failure(other_delivery, at=later)), now=later
            )
        queued = [message for message in queue.messages() if message[0] == NOTIFY_DISABLED_TASK]

    endpoint.refresh_from_db()
    other.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_reason == (
        f"No successful delivery since {T0:%Y-%m-%d %H:%M} UTC ({PERIOD.days} days or more of failures)."
    )
    assert queued == [(NOTIFY_DISABLED_TASK, [endpoint.pk, endpoint.disabled_reason])]
    assert other.enabled is True  # failing for an hour less than the period


def test_enabling_restarts_the_clock(endpoint, delivery):
    record_stats(_reached(_failure(delivery)), now=T0)
    disable_endpoint(endpoint=endpoint, reason="Disabled by an admin.", notify=False)

    enable_endpoint(endpoint=endpoint)

    assert _failing_since(endpoint) is None
    assert _health(endpoint) == (500, "HTTP 500", 1)  # what the requests said stays
    later = T0 + PERIOD + timedelta(hours=1)
    record_stats(_reached(_failure(delivery, at=later, number=2)), now=later)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, _failing_since(endpoint)) == (True, later)


# --- rebuild ---------------------------------------------------------------------------------------------


def _rollups() -> set:
    fields = [
        "tenant_id",
        "endpoint_id",
        "granularity",
        "bucket_start",
        "successes",
        "retries",
        "failures",
        "responses",
        *LATENCY_COLUMNS,
    ]
    return set(AttemptRollup.objects.values_list(*fields))


def _healths() -> set:
    return set(
        EndpointHealth.objects.values_list(
            "endpoint_id",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "failed_in_a_row",
            "last_success_at",
            "failing_since",
        )
    )


@pytest.fixture
def recorded(tenant, other_tenant):
    """Attempts of three endpoints of two tenants, over days and buckets, recorded batch by batch as workers do."""
    now = timezone.now()
    orders, billing = endpoint_for(tenant, name="orders"), endpoint_for(tenant, name="billing")
    theirs = endpoint_for(other_tenant, name="theirs")
    late = delivery_to(orders)
    record([late], status=500, duration_ms=7, at=now - timedelta(days=3))
    record([delivery_to(orders), delivery_to(billing)], duration_ms=120, at=now - timedelta(days=3, minutes=-7))
    record([late], status=None, error="Connection reset", duration_ms=5000, at=now - timedelta(hours=30))
    record([delivery_to(theirs) for _ in range(3)], status=503, duration_ms=20000, at=now - timedelta(hours=2))
    record([late], duration_ms=41, at=now - timedelta(minutes=50))
    record([delivery_to(billing)], status=404, final=True, duration_ms=9, at=now - timedelta(minutes=20))
    record([delivery_to(billing)], status=502, duration_ms=250, at=now - timedelta(minutes=3))
    prune_rollups(now=now, force=True)  # what the sweeper keeps: five-minute rows of the last two days only
    return {"rollups": _rollups(), "health": _healths()}


@pytest.mark.parametrize("chunk", [20_000, 2], ids=["one-chunk", "chunks-of-2"])
def test_rebuild_reproduces_the_rollups_and_health_recorded_incrementally(recorded, chunk):
    assert recorded["rollups"] and len(recorded["health"]) == 3

    count = rebuild_stats(chunk=chunk)

    assert count == Attempt.objects.count() == 10
    assert _rollups() == recorded["rollups"]
    assert _healths() == recorded["health"]


def test_rebuild_keeps_attempts_that_made_no_request_out_of_the_failing_streak(endpoint):
    delivery = delivery_to(endpoint)
    record([delivery], status=500, at=timezone.now() - timedelta(minutes=2))
    record([delivery], status=None, error="Not sent: the endpoint is busy.", request_made=False)
    incremental = _healths()
    assert [row[4] for row in incremental] == [1]  # the attempt that made no request did not count

    rebuild_stats()

    assert _healths() == incremental


def test_rebuild_replaces_rollups_that_drifted(recorded, endpoint):
    AttemptRollup.objects.update(successes=999)
    EndpointHealth.objects.update(failed_in_a_row=999)

    rebuild_stats()

    assert _rollups() == recorded["rollups"]
    assert _healths() == recorded["health"]


# --- pruning ---------------------------------------------------------------------------------------------


def test_pruning_deletes_only_five_minute_rows_older_than_two_days(endpoint, delivery):
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    for age in (timedelta(days=2, minutes=5), timedelta(days=1, hours=23, minutes=55), timedelta(hours=1)):
        _record(_reached(_success(delivery, at=now - age)))
    assert AttemptRollup.objects.filter(granularity=Granularity.FIVE_MINUTES).count() == 3
    hourly = set(AttemptRollup.objects.filter(granularity=Granularity.HOUR).values_list("bucket_start", "successes"))

    deleted = prune_rollups(now=now, force=True)

    fine = AttemptRollup.objects.filter(granularity=Granularity.FIVE_MINUTES).values_list("bucket_start", flat=True)
    assert deleted == 1
    assert sorted(fine) == [now - timedelta(days=1, hours=23, minutes=55), now - timedelta(hours=1)]
    assert set(AttemptRollup.objects.filter(granularity=Granularity.HOUR).values_list("bucket_start", "successes")) == (
        hourly
    )


def test_pruning_without_force_waits_ten_minutes_after_the_last_prune(endpoint, delivery):
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    prune_rollups(now=now, force=True)
    _record(_reached(_success(delivery, at=now - timedelta(days=5))))

    assert prune_rollups(now=now) == 0
    assert AttemptRollup.objects.filter(granularity=Granularity.FIVE_MINUTES).count() == 1


# --- percentile estimate ---------------------------------------------------------------------------------


def _histogram(**counts: int) -> list[int]:
    """``_histogram(b1=10, b14=10)``: counts by bucket index."""
    histogram = [0] * len(LATENCY_COLUMNS)
    for key, count in counts.items():
        histogram[int(key[1:])] = count
    return histogram


@pytest.mark.parametrize(
    ("histogram", "fraction", "expected"),
    [
        (_histogram(), 0.5, None),  # nothing recorded
        (_histogram(b0=4), 0.5, 2),  # 0-5 ms: half way
        (_histogram(b0=4), 1.0, 5),  # the top of the bucket
        (_histogram(b1=10), 0.5, 8),  # 5-10 ms: 7.5 rounds to 8
        (_histogram(b3=10), 0.2, 17),  # 15-25 ms: a fifth of the way
        (_histogram(b1=10, b14=10), 0.5, 10),  # exactly the first bucket's top
        (_histogram(b1=10, b14=10), 0.95, 3850),  # 2500-4000 ms: 9 of 10
        (_histogram(b1=10, b14=10), 0.99, 3970),
        (_histogram(b2=1, b18=1), 0.99, 15000),  # the open last bucket reports its lower bound
        (_histogram(b18=7), 0.5, 15000),
    ],
)
def test_the_latency_percentile_is_estimated_within_buckets(histogram, fraction, expected):
    assert latency_percentile(histogram, fraction) == expected


def test_an_older_attempt_recorded_late_does_not_move_health_backwards(endpoint, delivery):
    # A slow send that started first is often recorded after later, quicker ones.
    _record(_reached(_success(delivery, at=T0 + timedelta(seconds=30), number=2)))
    _record(_reached(_failure(delivery, status=None, at=T0, number=1)))

    assert _health(endpoint) == (200, "", 0)
    assert EndpointHealth.objects.get(endpoint=endpoint).last_attempt_at == T0 + timedelta(seconds=30)


def test_a_newer_failure_recorded_after_an_older_one_still_counts(endpoint, delivery):
    _record(_reached(_failure(delivery, status=503, at=T0 + timedelta(seconds=30), number=2)))
    _record(_reached(_failure(delivery, status=500, at=T0, number=1)))

    assert _health(endpoint) == (503, "HTTP 503", 2)
